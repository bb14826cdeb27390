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
from typing import TYPE_CHECKING, Any, Literal, Protocol

from watcher.core.states import BatchState
from watcher.errors import StateError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

__all__ = [
    "NOW",
    "ORDER",
    "UNFINISHED",
    "Cursor",
    "Database",
    "Dialect",
    "SqliteDatabase",
    "Transaction",
    "connect",
]

Dialect = Literal["sqlite", "postgresql"]


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

# The column that keeps the order rows were written in: SQLite's own rowid,
# a sequence in PostgreSQL.
ORDER: dict[str, str] = {"sqlite": "rowid", "postgresql": "seq"}
# The database's own clock, in seconds since the epoch: leases are timed by the
# one clock every instance shares, never by a host's.
NOW: dict[str, str] = {
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
    "postgresql": "extract(epoch from clock_timestamp())::double precision",
}

_TABLES = """
CREATE TABLE IF NOT EXISTS schemas (
    digest TEXT PRIMARY KEY,
    text BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL REFERENCES batches(id),
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    dev INTEGER, ino INTEGER, size INTEGER, mtime_ns INTEGER,
    sha256 TEXT,
    schema_digest TEXT,
    code TEXT,
    message TEXT,
    encoding TEXT,
    rows_blank INTEGER NOT NULL DEFAULT 0,
    archive_name TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_batch ON files(batch_id);
CREATE INDEX IF NOT EXISTS files_by_tenant ON files(tenant, state);
CREATE TABLE IF NOT EXISTS rows (
    file_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (file_id, row)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    file_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    field TEXT,
    code TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_by_file ON failures(file_id, row);
CREATE TABLE IF NOT EXISTS row_state (
    tenant TEXT NOT NULL,
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    digest TEXT NOT NULL,
    fields TEXT NOT NULL,
    confirmed_at REAL NOT NULL,
    PRIMARY KEY (tenant, target, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_by_digest ON files(tenant, sha256);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL
);
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    tenant TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    since REAL NOT NULL,
    expires_at REAL NOT NULL
);
"""

# Columns journals written by earlier versions lack.
_ADDED = (
    ("files", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "stopped_reason", "TEXT"),
    ("batches", "stopped_since", "REAL"),
    ("batches", "safeguard", "TEXT"),
    ("batches", "changes", "TEXT"),
    # A file's row counts, kept when retention drops its rows.
    ("files", "counts", "TEXT"),
    # A finished batch's files and row counts, for the page, status and metrics.
    ("batches", "counts", "TEXT"),
)


def connect(path: Path, *, read_only: bool = False) -> SqliteDatabase:
    """Open the journal at ``path``: created and upgraded, or read-only as it is.

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
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(_unusable(path, exc)) from exc
    try:
        if read_only:
            _check_current(db, path)
        else:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.executescript(_TABLES)
            _upgrade(db)
    except sqlite3.Error as exc:
        db.close()
        raise StateError(_unusable(path, exc)) from exc
    return SqliteDatabase(db)


class SqliteDatabase:
    """The journal in one SQLite file."""

    dialect: Dialect = "sqlite"

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


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _upgrade(db: sqlite3.Connection) -> None:
    """Add what journals written by earlier versions lack."""
    for table, column, kind in _ADDED:
        if column in _columns(db, table):
            continue
        try:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        except sqlite3.OperationalError as exc:  # another connection was first
            if "duplicate column" not in str(exc):
                raise
    db.execute(
        "CREATE INDEX IF NOT EXISTS batches_by_tenant ON batches(tenant, state, finished_at)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS batches_by_state ON batches(state)")
    db.execute("CREATE INDEX IF NOT EXISTS messages_by_state ON messages(state, tenant)")


def _check_current(db: sqlite3.Connection, path: Path) -> None:
    """Refuse, read-only, a journal that only an upgrade could read."""
    for table, column, _ in _ADDED:
        if column not in _columns(db, table):
            db.close()
            raise StateError(
                f"the journal {path} was written by an earlier version: start the service "
                "(or run watcher process) once to upgrade it"
            )


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
