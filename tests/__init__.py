"""The tests of the user import watcher, laid out like the package."""
