"""Tests of ``watcher.shell.targets``."""
