"""Tests of watcher.cli."""
