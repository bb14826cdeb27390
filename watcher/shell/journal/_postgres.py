"""The journal on PostgreSQL (psycopg 3): the state several hosts share.

The same tables as SQLite, in PostgreSQL's types and made by the same
migrations (:mod:`watcher.shell.journal.migrations`), and the same statements:
the journal's parts write ``?`` and ``:name`` placeholders, turned here into
psycopg's. Outside a transaction each statement commits at once (autocommit),
as with SQLite; :meth:`PostgresDatabase.transaction` groups statements.
Connections come from one pool per process (psycopg_pool), at most 32, so
an instance running hundreds of tenants stays far below the server's
``max_connections``. The password is read when a connection is made.

A connection that breaks (the server restarted, the network cut) raises
:class:`~watcher.errors.DatabaseUnavailableError` and is opened again on the
next statement: nothing half-done is ever taken for done, since a statement
either committed or is lost with its transaction, and the journal's steps
are safe to run again.

Integers that may not fit a signed 64 bits (a device or inode number on NFS)
are ``NUMERIC(20)``, read back as Python ints.
"""

from __future__ import annotations

import atexit
import dataclasses
import re
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.adapt import Loader
from psycopg_pool import ConnectionPool, PoolTimeout

from watcher.errors import DatabaseUnavailableError, StateError
from watcher.shell.journal.dialects import POSTGRESQL, Dialect
from watcher.shell.journal.migrations import check_current, migrate

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from watcher.config import Secret
    from watcher.shell.journal._database import Cursor

__all__ = ["PostgresDatabase", "PostgresTarget", "connect_postgres"]

_CONNECT_TIMEOUT = 10  # seconds: a server that does not answer is unavailable, not slow
_POOL_SIZE = 32  # connections an instance opens at most for its workers
_POOL_WAIT = 60.0  # seconds a statement waits for a pooled connection (a busy host is slow)
_POOLS: dict[str, ConnectionPool[psycopg.Connection[Any]]] = {}
_POOLS_LOCK = threading.Lock()
# The databases whose tables this process made (or found): each worker's
# connection need not ask again.
_MADE: set[str] = set()

# A placeholder the journal's parts write: ``?``, or ``:name`` (not ``::type``).
_PLACEHOLDER = re.compile(r"\?|(?<![:\w]):([a-z_]+)\b")


@dataclasses.dataclass(frozen=True, slots=True)
class PostgresTarget:
    """Where the shared journal lives: a libpq URL (no password in it) and the password."""

    url: str
    password: Secret | None = None

    def __str__(self) -> str:
        return self.url


class _IntNumeric(Loader):
    """``NUMERIC(20)`` (and sums of integers) read as Python ints, not Decimals."""

    def load(self, data: Any) -> int:  # noqa: ANN401 - a buffer of the value's text
        return int(bytes(data).split(b".")[0])


def connect_postgres(
    target: PostgresTarget, *, read_only: bool = False, dedicated: bool = False
) -> PostgresDatabase:
    """Open the shared journal, making its tables when missing; ``read_only`` changes nothing.

    Raises:
        DatabaseUnavailableError: the server does not answer now.
        StateError: the server refused us (password, permissions), with why.
    """
    database = PostgresDatabase(target, read_only=read_only, dedicated=dedicated)
    if read_only:
        try:
            check_current(database, str(target))
        except StateError:
            database.close()
            raise
        return database
    if target.url in _MADE:
        return database
    migrate(database, str(target))
    _MADE.add(target.url)
    return database


class _Result:
    """A statement's rows and count, read before its connection went back to the pool."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Any:  # noqa: ANN401 - a row of the statement's columns
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.adapters.register_loader("numeric", _IntNumeric)


def _settings(target: PostgresTarget) -> dict[str, Any]:
    """How every connection is made: autocommit, a name for pg_stat_activity, the password."""
    settings: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": _CONNECT_TIMEOUT,
        "application_name": "user-import-watcher",
    }
    if target.password is not None:
        settings["password"] = target.password.reveal()
    return settings


def _pool(target: PostgresTarget) -> ConnectionPool[psycopg.Connection[Any]]:
    """The process's pool for ``target``, made on first use."""
    with _POOLS_LOCK:
        pool = _POOLS.get(target.url)
        if pool is None:
            pool = ConnectionPool(
                target.url,
                kwargs=_settings(target),
                min_size=4,
                max_size=_POOL_SIZE,
                configure=_configure,
                name="journal",
                open=True,
            )
            _POOLS[target.url] = pool
        return pool


@atexit.register
def _close_pools() -> None:
    with _POOLS_LOCK:
        for pool in _POOLS.values():
            pool.close(timeout=1.0)
        _POOLS.clear()


class PostgresDatabase:
    """The shared journal for one thread: connections from the process's pool, or its own.

    Statements borrow a pooled connection and give it back at once, so
    hundreds of tenants' workers share a few connections; a transaction keeps
    its connection until it ends. ``dedicated`` keeps a connection of its own
    (the lease thread must never wait for one; a reader opens one briefly).
    """

    dialect: Dialect = POSTGRESQL

    def __init__(
        self, target: PostgresTarget, *, read_only: bool = False, dedicated: bool = False
    ) -> None:
        self.target = target
        self.read_only = read_only
        self._pool = None if dedicated or read_only else _pool(target)
        self._own: psycopg.Connection[Any] | None = None
        self._held: psycopg.Connection[Any] | None = None  # the open transaction's

    def _open(self) -> psycopg.Connection[Any]:
        if self._own is not None and not self._own.closed and not self._own.broken:
            return self._own
        try:
            conn = psycopg.connect(self.target.url, **_settings(self.target))
        except psycopg.OperationalError as exc:
            raise _unavailable(self.target, exc) from exc
        except psycopg.Error as exc:
            raise StateError(f"the database {self.target} cannot be used: {exc}") from exc
        _configure(conn)
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        self._own = conn
        return conn

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection for the next statement: the transaction's, one's own, or pooled."""
        try:
            if self._held is not None:
                yield self._held
            elif self._pool is None:
                yield self._open()
            else:
                with self._pool.connection(timeout=_POOL_WAIT) as conn:
                    yield conn
        except PoolTimeout as exc:
            raise DatabaseUnavailableError(
                f"no connection to the database {self.target} came free in {_POOL_WAIT:g} s"
            ) from exc
        except psycopg.OperationalError as exc:
            raise _unavailable(self.target, exc) from exc

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        """Run one statement; a broken connection raises DatabaseUnavailableError."""
        with self._connection() as conn:
            cursor = conn.execute(_translate(sql), params or None)
            rows = cursor.fetchall() if cursor.description is not None else []
            return _Result(rows, cursor.rowcount)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each set of values, pipelined."""
        with self._connection() as conn, conn.cursor() as cursor:
            cursor.executemany(_translate(sql), params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One commit for the statements inside (none on an error or a lost connection)."""
        if self._held is not None:  # nested: a savepoint
            with self._held.transaction():
                yield
            return
        with self._connection() as conn:
            self._held = conn
            try:
                with conn.transaction():
                    yield
            finally:
                self._held = None

    def close(self) -> None:
        """Close the connection of its own (pooled ones stay with the pool)."""
        if self._own is not None:
            self._own.close()


def _translate(sql: str) -> str:
    """The statement with psycopg's placeholders (``%s``, ``%(name)s``)."""
    sql = sql.replace("%", "%%")
    return _PLACEHOLDER.sub(lambda m: "%s" if m.group(0) == "?" else f"%({m.group(1)})s", sql)


def _unavailable(target: PostgresTarget, error: psycopg.Error) -> DatabaseUnavailableError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return DatabaseUnavailableError(
        f"the database {target} does not answer ({reason}): it is tried again on next use"
    )
