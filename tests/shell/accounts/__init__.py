"""Tests of ``watcher.shell.accounts``."""
