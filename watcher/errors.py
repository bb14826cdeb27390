"""Exceptions of the user import watcher, split by what the caller should do.

Every exception this package raises on purpose is here. Expected bad input (a
customer's malformed file, a row that breaks a rule) is never an exception: it
is data in a report. Exceptions are for the operator's mistakes and for the
world being unavailable::

    WatcherError               base of everything this package raises on purpose
    ├── SchemaError            a header schema is invalid: fix the schema file
    ├── ConfigError            the service configuration is invalid: fix the config
    ├── StateError             the state folder or its journal cannot be used: fix
    │   │                      its permissions, free space, or restore the journal
    │   └── DatabaseUnavailableError  the shared database cannot be reached now:
    │                          tried again once it answers
    ├── AlreadyRunningError    another service holds the state folder: stop it,
    │                          or drop files instead of processing them
    ├── OnboardingError        a tenant cannot be added or removed as asked;
    │                          nothing was changed: fix the request
    ├── SecretUnavailableError a token or password cannot be read now: put the
    │                          file or variable in place; tried again on next use
    ├── NoAnswerError          one request to the API got no answer (the connection
    │                          failed or broke): retried like a 503
    └── SinkUnavailableError   the API or the store cannot take users now: the
                               rows stay pending and are tried again later

``SchemaError`` and ``ConfigError`` carry every problem found, not just the
first, so one run of ``watcher check-schema`` or ``watcher check-config``
lists all of them.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "AlreadyRunningError",
    "ConfigError",
    "DatabaseUnavailableError",
    "NoAnswerError",
    "OnboardingError",
    "SchemaError",
    "SecretUnavailableError",
    "SinkUnavailableError",
    "StateError",
    "WatcherError",
]


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


class DatabaseUnavailableError(StateError):
    """The shared database (PostgreSQL) does not answer now: a restart, the network.

    Nothing the statement did counts; the connection is opened again on next use.
    """


class AlreadyRunningError(WatcherError):
    """Another ``watcher run`` or ``watcher process`` holds this state folder."""


class OnboardingError(WatcherError):
    """A tenant cannot be added or removed as asked; nothing was changed."""


class SecretUnavailableError(WatcherError):
    """A secret's file or environment variable cannot be read right now."""


class NoAnswerError(WatcherError):
    """A request got no answer: the connection could not be made, or broke.

    ``reason`` names the kind of failure (the client's own word for it).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class SinkUnavailableError(WatcherError):
    """The sink cannot take users now; unreported rows stay pending.

    ``reason`` is ``"unavailable"`` (the API kept failing, or timed out, past
    every retry) or ``"auth"`` (the API refused the tenant's token: an
    operator must fix it, and no customer is told their users failed).
    """

    def __init__(self, reason: Literal["unavailable", "auth"], detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
