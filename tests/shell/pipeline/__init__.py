"""Tests of ``watcher.shell.pipeline``."""
