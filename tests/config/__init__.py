"""Tests of watcher.config."""
