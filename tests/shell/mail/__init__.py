"""Tests of ``watcher.shell.mail``."""
