"""The imperative shell: everything that touches the world.

Watching drop folders, claiming and archiving files by directory descriptor,
the journal (SQLite), the API and the embedded store, the outbox and SMTP,
systemd, the status file, onboarding accounts, and the service loop that
wires them together. Decisions are made by :mod:`watcher.core`; the shell
carries them out.
"""
