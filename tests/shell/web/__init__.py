"""Tests of ``watcher.shell.web``."""
