"""Tests of watcher.core."""
