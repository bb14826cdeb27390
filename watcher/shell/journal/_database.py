"""The journal's database: what both kinds offer, and the SQLite one (the default).

The journal's parts speak to a :class:`Database`: statements with ``?``
placeholders, ``executemany``, a transaction, and the few words that differ
between SQLite and PostgreSQL (:attr:`Database.dialect`). :func:`connect`
opens SQLite; :mod:`watcher.shell.journal._postgres` opens PostgreSQL.

SQLite runs in WAL mode with ``synchronous=NORMAL``: it survives a killed
process, and lets ``watcher status`` read (read-only) while the service writes.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any, Protocol

from watcher.core.states import BatchState
from watcher.errors import StateError
from watcher.shell.journal.dialects import SQLITE, Dialect
from watcher.shell.journal.migrations import check_current, migrate

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

__all__ = [
    "UNFINISHED",
    "Cursor",
    "Database",
    "SqliteDatabase",
    "Transaction",
    "connect",
]

_BUSY_TIMEOUT = 30.0  # seconds a connection waits for another's lock
# The WAL switch is tried this often, this far apart: as long as the busy timeout.
_WAL_PAUSE = 0.05
_WAL_TRIES = int(_BUSY_TIMEOUT / _WAL_PAUSE)


class Cursor(Protocol):
    """What a statement gives back: its rows, and how many it changed."""

    @property
    def rowcount(self) -> int:
        """How many rows an UPDATE or DELETE changed."""
        ...

    def fetchone(self) -> Any:  # noqa: ANN401 - a row of the statement's columns
        """The next row, or None."""
        ...

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        ...

    def __iter__(self) -> Iterator[Any]:
        """The rows, one by one."""
        ...


class Database(Protocol):
    """A journal connection: one per thread, SQLite or PostgreSQL."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        """Run one statement (``?`` or ``:name`` placeholders), at once outside a transaction."""
        ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each set of values."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """``with db.transaction():`` groups statements into one commit (none on an error)."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


# The batches not yet done, as SQL: an IN the index on state can answer, where
# ``state != 'done'`` would read every batch of the year.
UNFINISHED = "state IN ({})".format(
    ", ".join(f"'{s}'" for s in BatchState if s is not BatchState.DONE)
)


def connect(path: Path, *, read_only: bool = False, any_thread: bool = False) -> SqliteDatabase:
    """Open the journal at ``path``: created and upgraded, or read-only as it is.

    ``any_thread``: the connection may be used from one thread after another
    (never from two at once: a run taken in turns).

    Raises:
        StateError: the folder or the database cannot be used (read-only,
            full, not a database, corrupted, or too old to read without
            upgrading), with the path and the reason.
    """
    try:
        if read_only:
            db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                path,
                isolation_level=None,
                timeout=_BUSY_TIMEOUT,
                check_same_thread=not any_thread,
            )
    except (OSError, sqlite3.Error) as exc:
        raise StateError(_unusable(path, exc)) from exc
    try:
        if read_only:
            check_current(SqliteDatabase(db), str(path))
        else:
            _into_wal(db)
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            migrate(SqliteDatabase(db), str(path))
    except sqlite3.Error as exc:
        db.close()
        raise StateError(_unusable(path, exc)) from exc
    except StateError:
        db.close()
        raise
    return SqliteDatabase(db)


def _into_wal(db: sqlite3.Connection) -> None:
    """Put the journal in WAL mode, waiting for another opener doing the same.

    Switching a new journal to WAL takes an exclusive lock, and SQLite answers
    "database is locked" at once to a second process switching meanwhile
    instead of waiting its busy timeout; so the switch is tried again, for as
    long as that timeout.
    """
    for _ in range(_WAL_TRIES - 1):
        try:
            db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            time.sleep(_WAL_PAUSE)
        else:
            return
    db.execute("PRAGMA journal_mode=WAL")


class SqliteDatabase:
    """The journal in one SQLite file."""

    dialect: Dialect = SQLITE

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        """Run one statement."""
        return self.db.execute(sql, params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each set of values."""
        self.db.executemany(sql, params)

    def transaction(self) -> Transaction:
        """``BEGIN IMMEDIATE``: the write lock is taken at once, not at the first write."""
        return Transaction(self.db)

    def close(self) -> None:
        """Close the file."""
        self.db.close()


class Transaction:
    """``with Transaction(db):`` groups SQLite writes into one commit (or none, on an error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def _unusable(path: Path, error: OSError | sqlite3.Error) -> str:
    reason = error.strerror if isinstance(error, OSError) else str(error)
    return (
        f"the journal {path} cannot be used ({reason}): check that the state folder is "
        "writable by the service's user and its disk has room; if it is not a database, "
        "restore it from a backup or move it aside"
    )
