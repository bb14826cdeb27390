"""The imperative shell: everything that touches the world, in rooms by concern.

Decisions are made by :mod:`watcher.core`; the shell carries them out. The
rooms follow an upload through the host::

    intake/     a drop folder's events, scans and server logs -> files ready for a batch
    pipeline/   a batch's steps: claim, validate, import, report, archive; the check lane's
    targets/    where valid users go: the User Import API (paced) or the embedded store
    mail/       the outbox and SMTP: failure reports, notices, check answers
    journal/    every batch's, file's, row's and message's state, SQLite or PostgreSQL
    running/    the long-running service: its loop, tenants, threads, periodic passes
    web/        what the service shows: metrics, the status document and page
    accounts/   the host's side of a tenant: accounts, folders, FTPS, server probes

Four modules every room stands on stay here: ``statedir`` (every path in the
state folder, and its lock), ``files`` (atomic writes), ``logs`` (structured
JSON logs) and ``faults`` (crash points for tests).
"""
