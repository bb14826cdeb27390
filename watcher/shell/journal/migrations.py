"""The journal's tables, one definition for both databases, and the migrations that keep it current.

Every change to the journal is a numbered :class:`Migration`, applied in
order at start and recorded in ``journal_version``; the journal's version is
the highest recorded. :func:`migrate` runs in one transaction under the
database's lock (SQLite's write lock; a PostgreSQL advisory lock), so of
several instances starting at once against a shared database one migrates
and the others wait, then find nothing left to do. An instance older than
its journal (a fleet upgraded host by host, the database already migrated by
a newer one) refuses to start with one line rather than write what it does
not understand.

Migration 1 is the journal as it was before migrations: a journal made by an
earlier release (its tables there, ``journal_version`` not) is adopted at
version 1, with the columns earlier releases added one by one brought in.
Add a migration to change the journal, never edit an old one: a host that
applied it will not apply it again.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from watcher.errors import StateError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from watcher.shell.journal._database import Database
    from watcher.shell.journal.dialects import Dialect

__all__ = ["MIGRATIONS", "Migration", "check_current", "current_version", "latest", "migrate"]


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One change to the journal: its number, what it does, its statements for a dialect."""

    version: int
    summary: str
    statements: Callable[[Dialect], Sequence[str]]


def _tables(d: Dialect) -> list[str]:
    """The journal as the release of 2026-12-05 left it (``IF NOT EXISTS``: adoptable)."""
    real, blob, wide, big = (d.types[k] for k in ("real", "blob", "wide", "big"))
    return [
        f"CREATE TABLE IF NOT EXISTS schemas (digest TEXT PRIMARY KEY, text {blob} NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS batches (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            state TEXT NOT NULL,
            created_at {real} NOT NULL,
            finished_at {real},
            stopped_reason TEXT,
            stopped_since {real},
            safeguard TEXT,
            changes TEXT,
            counts TEXT
        )""",
        f"""CREATE TABLE IF NOT EXISTS files (
            {d.sequence}
            id TEXT PRIMARY KEY,
            batch_id TEXT NOT NULL REFERENCES batches(id),
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            dev {wide}, ino {wide}, size {big}, mtime_ns {big},
            sha256 TEXT,
            schema_digest TEXT,
            code TEXT,
            message TEXT,
            encoding TEXT,
            rows_blank INTEGER NOT NULL DEFAULT 0,
            archive_name TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            received_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            counts TEXT
        )""",
        f"""CREATE TABLE IF NOT EXISTS rows (
            file_id TEXT NOT NULL,
            row INTEGER NOT NULL,
            state TEXT NOT NULL,
            PRIMARY KEY (file_id, row)
        ){d.without_rowid}""",
        f"""CREATE TABLE IF NOT EXISTS failures (
            {d.sequence}
            file_id TEXT NOT NULL,
            row INTEGER NOT NULL,
            field TEXT,
            code TEXT NOT NULL,
            message TEXT NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS row_state (
            tenant TEXT NOT NULL,
            target TEXT NOT NULL,
            key TEXT NOT NULL,
            digest TEXT NOT NULL,
            fields TEXT NOT NULL,
            confirmed_at {real} NOT NULL,
            PRIMARY KEY (tenant, target, key)
        ){d.without_rowid}""",
        f"""CREATE TABLE IF NOT EXISTS messages (
            id TEXT PRIMARY KEY,
            batch_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            path TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at {real} NOT NULL,
            sent_at {real}
        )""",
        f"""CREATE TABLE IF NOT EXISTS instances (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started_at {real} NOT NULL,
            seen_at {real} NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS owners (
            tenant TEXT PRIMARY KEY,
            instance TEXT NOT NULL,
            since {real} NOT NULL,
            expires_at {real} NOT NULL
        )""",
    ]


# Columns SQLite journals of earlier releases got one release at a time
# (PostgreSQL journals always had them): brought in when adopting one.
_EARLIER_COLUMNS = (
    ("files", "attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("batches", "stopped_reason", "TEXT"),
    ("batches", "stopped_since", "{real}"),
    ("batches", "safeguard", "TEXT"),
    ("batches", "changes", "TEXT"),
    ("files", "counts", "TEXT"),
    ("batches", "counts", "TEXT"),
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS files_by_batch ON files(batch_id)",
    "CREATE INDEX IF NOT EXISTS files_by_tenant ON files(tenant, state)",
    "CREATE INDEX IF NOT EXISTS files_by_digest ON files(tenant, sha256)",
    "CREATE INDEX IF NOT EXISTS failures_by_file ON failures(file_id, row)",
    "CREATE INDEX IF NOT EXISTS batches_by_tenant ON batches(tenant, state, finished_at)",
    "CREATE INDEX IF NOT EXISTS batches_by_state ON batches(state)",
    "CREATE INDEX IF NOT EXISTS messages_by_state ON messages(state, tenant)",
)


def _checks(d: Dialect) -> list[str]:
    """The check lane's answers, kept apart from batches (:mod:`.checks`)."""
    real = d.types["real"]
    return [
        f"""CREATE TABLE checks (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            checked_at {real} NOT NULL,
            rows INTEGER NOT NULL,
            failed INTEGER NOT NULL,
            code TEXT
        )""",
        "CREATE INDEX checks_by_tenant ON checks(tenant, checked_at)",
        "CREATE INDEX checks_by_time ON checks(checked_at)",
    ]


def _snapshots(d: Dialect) -> list[str]:
    """Full snapshots: the fields naming each known user, and each batch's missing users."""
    return [
        "ALTER TABLE row_state ADD COLUMN ident TEXT",
        f"""CREATE TABLE missing (
            batch_id TEXT NOT NULL,
            key TEXT NOT NULL,
            tenant TEXT NOT NULL,
            target TEXT NOT NULL,
            state TEXT NOT NULL,
            ident TEXT,
            code TEXT,
            message TEXT,
            PRIMARY KEY (batch_id, key)
        ){d.without_rowid}""",
    ]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the journal of the release of 2026-12-05", lambda d: [*_tables(d), *_INDEXES]),
    Migration(2, "the check lane's answers", _checks),
    Migration(3, "full snapshots: missing users, and the fields that name a user", _snapshots),
    Migration(
        4,
        "what reading a file noted (a workbook's sheet, numbers in text columns)",
        lambda _: ["ALTER TABLE files ADD COLUMN notes TEXT"],
    ),
)


def latest(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """The version ``migrations`` bring a journal to."""
    return max(m.version for m in migrations)


def current_version(db: Database) -> int | None:
    """The journal's version; 0 for one made before migrations; None for no journal at all."""
    if db.dialect.has_table(db, "journal_version"):
        row = db.execute("SELECT MAX(version) FROM journal_version").fetchone()
        return int(row[0] or 0)
    return 0 if db.dialect.has_table(db, "batches") else None


def migrate(
    db: Database,
    where: str,
    *,
    migrations: Sequence[Migration] = MIGRATIONS,
    clock: Callable[[], float] = time.time,
) -> list[int]:
    """Bring the journal to the latest version, under the database's lock; the versions applied.

    Raises:
        StateError: the journal is newer than this release (``where`` names it).
    """
    newest = latest(migrations)
    found = current_version(db)
    if found == newest:  # the usual start: nothing to do, no lock taken
        return []
    applied: list[int] = []
    with db.transaction():
        db.dialect.lock_for_migration(db)
        real = db.dialect.types["real"]
        db.execute(
            "CREATE TABLE IF NOT EXISTS journal_version (version INTEGER PRIMARY KEY,"
            f" summary TEXT NOT NULL, applied_at {real} NOT NULL)"
        )
        found = current_version(db) or 0  # another instance may have migrated meanwhile
        if found > newest:
            raise StateError(_newer_than_release(where, found, newest))
        adopting = found == 0 and db.dialect.has_table(db, "batches")
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version <= found:
                continue
            for statement in migration.statements(db.dialect):
                db.execute(statement)
            if adopting and migration.version == 1:
                _bring_in_earlier_columns(db)
            db.execute(
                "INSERT INTO journal_version (version, summary, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.summary, clock()),
            )
            applied.append(migration.version)
    return applied


def check_current(db: Database, where: str) -> None:
    """For a reader, which migrates nothing: refuse a journal older or newer than this release.

    Raises:
        StateError: what to do, in one line.
    """
    found, newest = current_version(db), latest()
    if found is None:  # a file with no tables: the service is making it (or stopped doing so)
        raise StateError(
            f"the journal {where} holds no tables yet: the service is creating it; "
            "try again in a moment (or start the service, if it is not running)"
        )
    if found > newest:
        raise StateError(_newer_than_release(where, found, newest))
    if found < newest:
        raise StateError(
            f"the journal {where} was written by an earlier version: start the service "
            "(or run watcher process) once to upgrade it"
        )


def _newer_than_release(where: str, found: int, newest: int) -> str:
    """The one line an instance older than its journal stops with."""
    return (
        f"the journal {where} is at version {found}, newer than this release knows "
        f"(up to {newest}): a newer watcher upgraded it; upgrade watcher on this host too"
    )


def _bring_in_earlier_columns(db: Database) -> None:
    for table, column, kind in _EARLIER_COLUMNS:
        if column not in db.dialect.columns(db, table):
            typed = kind.format(real=db.dialect.types["real"])
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {typed}")
