"""Tests of ``watcher.shell.journal``."""
