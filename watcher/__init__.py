"""The user import watcher: CSV files dropped on an SFTP host become users."""

__version__ = "0.1.0"
