"""Tests of ``watcher.shell.intake``."""
