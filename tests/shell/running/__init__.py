"""Tests of ``watcher.shell.running``."""
