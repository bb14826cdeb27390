"""Exceptions of the user import watcher, split by what the caller should do.

Expected bad input (a customer's malformed file, a row that breaks a rule) is
never an exception: it is data in a report. Exceptions are for the operator's
mistakes and for the world being unavailable::

    WatcherError             base of everything this package raises on purpose
    ├── SchemaError          a header schema is invalid: fix the schema file
    ├── ConfigError          the service configuration is invalid: fix the config
    ├── StateError           the state folder or its journal cannot be used: fix
    │                        its permissions, free space, or restore the journal
    └── AlreadyRunningError  (watcher.service) another service holds the state
                             folder: stop it, or drop files instead of processing

Each carries every problem found, not just the first, so one run of
``watcher check-schema`` or ``watcher check-config`` lists all of them.
"""

from __future__ import annotations


class WatcherError(Exception):
    """Base of the exceptions this package raises on purpose."""


class _ProblemsError(WatcherError):
    """An error that lists several problems, each a sentence naming its place."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{source}:\n{listing}")


class SchemaError(_ProblemsError):
    """A header schema is invalid; every problem names the field it concerns."""


class ConfigError(_ProblemsError):
    """The service configuration is invalid; every problem names its key."""


class StateError(WatcherError):
    """The state folder or its journal cannot be used; the message says which and why."""
