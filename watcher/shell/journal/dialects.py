"""What differs between SQLite and PostgreSQL, in one place: the journal's parts never branch.

A :class:`Dialect` gives the words a statement needs (the types of the
tables, the column that keeps insertion order, the database's clock, JSON)
and carries out the few operations each database does its own way: writing
many rows (``executemany`` on SQLite; one statement over arrays on
PostgreSQL, a round trip instead of thousands) and taking the journal's
migration lock. The journal's parts ask ``db.dialect`` and write one
statement for both.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from watcher.shell.journal._database import Database

__all__ = ["POSTGRESQL", "SQLITE", "Dialect", "runs"]

# The advisory lock that makes one instance migrate while the others wait.
_MIGRATION_LOCK = 7_370_301


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    """The words and ways of one database kind.

    Attributes:
        name: ``sqlite`` or ``postgresql``.
        types: the type of each kind of column the tables use: ``real``
            (seconds, floats), ``blob``, ``wide`` (an integer that may not fit
            a signed 64 bits: a device or inode number on NFS), ``big``.
        sequence: the column that numbers rows in insertion order, first in
            a table that needs one (SQLite has its own ``rowid``).
        without_rowid: what ends a table keyed by its primary key alone.
        order: the column to sort by for insertion order.
        now: the database's own clock, in seconds since the epoch.
    """

    name: Literal["sqlite", "postgresql"]
    types: dict[str, str]
    sequence: str
    without_rowid: str
    order: str
    now: str

    def json_list(self, item: str) -> str:
        """An aggregate: a JSON text holding one array of ``item`` (a list of values) per row."""
        raise NotImplementedError

    def day(self, seconds: str) -> str:
        """The UTC day (``YYYY-MM-DD``) of a column of seconds since the epoch."""
        raise NotImplementedError

    def json_integer(self, column: str, *path: str) -> str:
        """The integer at ``path`` in a column of JSON text."""
        raise NotImplementedError

    def insert_many(
        self,
        db: Database,
        table: str,
        *,
        columns: Sequence[str],
        fixed: Sequence[Any],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str],
        tail: str = "",
    ) -> None:
        """Insert ``rows`` in order; the first columns take ``fixed``, the rest each row's values.

        ``types`` are the PostgreSQL array types of the varying columns
        (``integer``, ``text``); ``tail`` ends the statement (an upsert).
        """
        raise NotImplementedError

    def update_rows(
        self, db: Database, sql: str, params: Sequence[Any], rows: Sequence[int]
    ) -> None:
        """``sql`` ending in ``row IN (...)``'s place (``{rows}``) for every number in ``rows``."""
        raise NotImplementedError

    def lock_for_migration(self, db: Database) -> None:
        """Inside a transaction: make every other process wait until it commits."""
        raise NotImplementedError

    def has_table(self, db: Database, table: str) -> bool:
        """Whether the journal has ``table``."""
        raise NotImplementedError

    def columns(self, db: Database, table: str) -> set[str]:
        """The names of ``table``'s columns."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Sqlite(Dialect):
    def json_list(self, item: str) -> str:
        return f"json_group_array(json_array({item}))"

    def day(self, seconds: str) -> str:
        return f"date({seconds}, 'unixepoch')"

    def json_integer(self, column: str, *path: str) -> str:
        return f"json_extract({column}, '$.{'.'.join(path)}')"

    def insert_many(
        self,
        db: Database,
        table: str,
        *,
        columns: Sequence[str],
        fixed: Sequence[Any],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str],  # noqa: ARG002 - PostgreSQL's alone
        tail: str = "",
    ) -> None:
        places = ", ".join("?" * len(columns))
        db.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({places}) {tail}",  # noqa: S608 - the journal's own names
            ((*fixed, *row) for row in rows),
        )

    def update_rows(
        self, db: Database, sql: str, params: Sequence[Any], rows: Sequence[int]
    ) -> None:
        # One statement per run of consecutive rows: the outcomes of a chunk
        # are a few runs, however the answers came back, not one per row.
        db.executemany(
            sql.format(rows="row BETWEEN ? AND ?"),
            ((*params, low, high) for low, high in runs(rows)),
        )

    def lock_for_migration(self, db: Database) -> None:
        """``BEGIN IMMEDIATE`` (the journal's transaction) already holds the write lock."""

    def has_table(self, db: Database, table: str) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return db.execute(query, (table,)).fetchone() is not None

    def columns(self, db: Database, table: str) -> set[str]:
        return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Postgres(Dialect):
    def json_list(self, item: str) -> str:
        return f"json_agg(json_build_array({item}))::text"

    def day(self, seconds: str) -> str:
        return f"to_char(to_timestamp({seconds}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def json_integer(self, column: str, *path: str) -> str:
        *inner, last = path
        steps = "".join(f" -> '{p}'" for p in inner)
        return f"({column}::json{steps} ->> '{last}')::bigint"

    def insert_many(
        self,
        db: Database,
        table: str,
        *,
        columns: Sequence[str],
        fixed: Sequence[Any],
        rows: Sequence[Sequence[Any]],
        types: Sequence[str],
        tail: str = "",
    ) -> None:
        if not rows:
            return
        varying = columns[len(fixed) :]
        arrays = [list(c) for c in zip(*rows, strict=True)]
        unnest = ", ".join(f"?::{kind}[]" for kind in types)
        names = ", ".join(f"u.{c}" for c in varying)
        db.execute(
            f"INSERT INTO {table} ({', '.join(columns)})"  # noqa: S608 - the journal's own names
            f" SELECT {', '.join('?' * len(fixed))}{', ' if fixed else ''}{names}"
            f" FROM unnest({unnest}) WITH ORDINALITY AS u({', '.join(varying)}, n)"
            f" ORDER BY u.n {tail}",
            (*fixed, *arrays),
        )

    def update_rows(
        self, db: Database, sql: str, params: Sequence[Any], rows: Sequence[int]
    ) -> None:
        if rows:
            db.execute(sql.format(rows="row = ANY(?::integer[])"), (*params, list(rows)))

    def lock_for_migration(self, db: Database) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def has_table(self, db: Database, table: str) -> bool:
        query = "SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?"
        return db.execute(query, (table,)).fetchone() is not None

    def columns(self, db: Database, table: str) -> set[str]:
        rows = db.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {row[0] for row in rows}


SQLITE: Dialect = _Sqlite(
    name="sqlite",
    types={"real": "REAL", "blob": "BLOB", "wide": "INTEGER", "big": "INTEGER"},
    sequence="",
    without_rowid=" WITHOUT ROWID",
    order="rowid",
    now="((julianday('now') - 2440587.5) * 86400.0)",
)
POSTGRESQL: Dialect = _Postgres(
    name="postgresql",
    types={"real": "DOUBLE PRECISION", "blob": "BYTEA", "wide": "NUMERIC(20)", "big": "BIGINT"},
    sequence="seq BIGSERIAL,",
    without_rowid="",
    order="seq",
    now="extract(epoch from clock_timestamp())::double precision",
)


def runs(rows: Iterable[int]) -> Iterator[tuple[int, int]]:
    """The runs of consecutive numbers in ``rows`` (sorted, each once), as (first, last)."""
    first = last = None
    for row in sorted(set(rows)):
        if last is not None and row == last + 1:
            last = row
            continue
        if first is not None and last is not None:
            yield first, last
        first = last = row
    if first is not None and last is not None:
        yield first, last
