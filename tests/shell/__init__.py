"""Tests of watcher.shell."""
