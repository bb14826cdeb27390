"""Journal migrations: a journal of the last release is upgraded intact, on both databases."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

from tests.support import ROOT
from watcher.core.records import MissingCounts
from watcher.errors import StateError
from watcher.shell.journal import Journal
from watcher.shell.journal._database import SqliteDatabase
from watcher.shell.journal._postgres import PostgresDatabase, connect_postgres
from watcher.shell.journal.migrations import MIGRATIONS, Migration, current_version, latest, migrate

if TYPE_CHECKING:
    from collections.abc import Iterator

    from watcher.shell.journal import JournalAt

FIXTURES = ROOT / "tests" / "fixtures"
RELEASE = "journal-2026-12-05"
# Every table the release wrote, with the column it is ordered by here.
TABLES = {
    "batches": "id",
    "files": "id",
    "rows": "file_id, row",
    "failures": "file_id, row, code",
    "row_state": "tenant, target, key",
    "messages": "id",
    "schemas": "digest",
}


def released_sqlite() -> sqlite3.Connection:
    """The release's journal, in memory, as it wrote it."""
    db = sqlite3.connect(":memory:")
    db.executescript((FIXTURES / f"{RELEASE}.sql").read_text())
    return db


def contents(query: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the release wrote, in a stable order."""
    found = {}
    for table, order in TABLES.items():
        columns = COLUMNS[table]
        rows = query(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {order}")  # noqa: S608
        found[table] = [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows
        ]
    return found


def _columns() -> dict[str, list[str]]:
    db = released_sqlite()
    return {t: [row[1] for row in db.execute(f"PRAGMA table_info({t})")] for t in TABLES}


COLUMNS = _columns()


def make_released(where: JournalAt) -> dict[str, list[tuple[Any, ...]]]:
    """Lay the release's journal at ``where`` (its own tables, its rows); what it holds."""
    source = released_sqlite()
    expected = contents(lambda sql: source.execute(sql).fetchall())
    if isinstance(where, Path):
        with sqlite3.connect(where) as db:
            db.executescript((FIXTURES / f"{RELEASE}.sql").read_text())
        return expected
    with psycopg.connect(where.url, password=where.password.reveal()) as pg:  # type: ignore[union-attr]
        pg.execute((FIXTURES / f"{RELEASE}-postgresql.sql").read_text())
        for table, rows in expected.items():
            names = COLUMNS[table]
            places = ", ".join(["%s"] * len(names))
            with pg.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(names)}) VALUES ({places})",  # noqa: S608
                    rows,
                )
    return expected


def read_back(where: JournalAt) -> dict[str, list[tuple[Any, ...]]]:
    """What the journal at ``where`` holds now, as :func:`make_released` read it."""
    if isinstance(where, Path):
        with sqlite3.connect(where) as db:
            return contents(lambda sql: db.execute(sql).fetchall())
    with psycopg.connect(where.url, password=where.password.reveal()) as pg:  # type: ignore[union-attr]
        return contents(lambda sql: pg.execute(sql).fetchall())


def test_the_releases_journal_is_upgraded_with_everything_in_it(journal_at: JournalAt) -> None:
    """Every batch, file, row, failure, fingerprint and message survives; the views still read."""
    expected = make_released(journal_at)
    journal = Journal(journal_at)
    try:
        done = journal.batches.finished_before("jcu", 4_102_444_800.0)
        totals = sorted(f.counts.total for b in done for f in journal.batches.view(b).files)
        held = journal.batches.unfinished("jcu")
        known = journal.users.count("jcu", "embedded")
        checks = journal.checks.recent("jcu")  # migration 2's table, empty
        every = journal.users.every("jcu", "embedded")  # migration 3's column, empty
        missing = [journal.missing.counts(b) for b in done]  # and its table
    finally:
        journal.close()
    after = read_back(journal_at)
    assert after == expected
    assert totals == [0, 5, 20]
    assert [b.safeguard.value for b in held if b.safeguard] == ["held"]
    assert known == 22
    assert checks == []
    assert every.height == 22
    assert every["ident"].null_count() == 22
    assert missing == [MissingCounts()] * len(done)


@pytest.fixture
def database(journal_at: JournalAt) -> Iterator[SqliteDatabase | PostgresDatabase]:
    """A connection to a journal made by this release, SQLite or PostgreSQL."""
    Journal(journal_at).close()
    if isinstance(journal_at, Path):
        db: SqliteDatabase | PostgresDatabase = SqliteDatabase(
            sqlite3.connect(journal_at, isolation_level=None)
        )
    else:
        db = connect_postgres(journal_at, dedicated=True)
    yield db
    db.close()


NOTE = Migration(
    len(MIGRATIONS) + 1,
    "a note on each batch (added by the test)",
    lambda _: [
        "ALTER TABLE batches ADD COLUMN note TEXT DEFAULT 'none' NOT NULL",
        "CREATE INDEX batches_by_note ON batches(note)",
    ],
)


def test_a_new_migration_reaches_either_database_once(
    database: SqliteDatabase | PostgresDatabase,
) -> None:
    """Added after the release: applied once, recorded, its column there; again, nothing."""
    migrations = (*MIGRATIONS, NOTE)
    assert current_version(database) == latest()
    assert migrate(database, "test", migrations=migrations) == [NOTE.version]
    assert migrate(database, "test", migrations=migrations) == []
    assert current_version(database) == NOTE.version
    assert "note" in database.dialect.columns(database, "batches")
    database.execute(
        "INSERT INTO batches (id, tenant, state, created_at) VALUES ('x', 'jcu', 'done', 1)"
    )
    assert database.execute("SELECT note FROM batches WHERE id = 'x'").fetchone()[0] == "none"


def test_a_release_older_than_its_journal_refuses_to_start(
    database: SqliteDatabase | PostgresDatabase, journal_at: JournalAt
) -> None:
    """A journal a newer release migrated: this one stops with one line, changing nothing."""
    migrate(database, "test", migrations=(*MIGRATIONS, NOTE))
    if not isinstance(journal_at, Path):
        from watcher.shell.journal import _postgres  # noqa: PLC0415 - its cache of migrated ones

        _postgres._MADE.discard(journal_at.url)
    newer, known = NOTE.version, latest()
    with pytest.raises(
        StateError, match=rf"is at version {newer}, newer than this release knows \(up to {known}\)"
    ):
        Journal(journal_at)
    with pytest.raises(StateError, match="newer than this release knows"):
        Journal(journal_at, read_only=True)


def test_instances_starting_at_once_migrate_once(journal_at: JournalAt) -> None:
    """Four openers of a new journal at the same moment: one migrates, each version once."""
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            Journal(journal_at).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    journal = Journal(journal_at)
    try:
        versions = journal.db.execute("SELECT version FROM journal_version").fetchall()
    finally:
        journal.close()
    assert [tuple(v) for v in versions] == [(m.version,) for m in MIGRATIONS]
