"""The embedded user store: where users go when no API is configured.

A SQLite file in the state folder, one row per (tenant, key), upserted like
the Push API upserts by ``unique_id``. Each user remembers which file row last
wrote it, so a row sent again after a crash is not counted as a second import:
``imports`` counts distinct file rows, and the crash tests check it is one.
Inspect it with any SQLite client::

    sqlite3 STATE/users.sqlite "SELECT key, attributes FROM users"
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING

from watcher.shell.targets.sinks import Outcome

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path

__all__ = ["UserStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    attributes TEXT NOT NULL,
    source TEXT NOT NULL,
    imports INTEGER NOT NULL DEFAULT 1,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
"""
_UPSERT = """
INSERT INTO users (tenant, key, attributes, source, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (tenant, key) DO UPDATE SET
    attributes = json_patch(users.attributes, excluded.attributes),
    imports = users.imports + (users.source != excluded.source),
    source = excluded.source,
    updated_at = excluded.updated_at
"""
_CHUNK = 1000


class UserStore:
    """The embedded user store of one state folder, for one tenant."""

    kind = "embedded"

    def __init__(
        self,
        path: Path,
        tenant: str,
        *,
        key: tuple[str, ...],
        source: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open the store.

        Args:
            path: the SQLite file.
            tenant: whose users these are.
            key: the attributes that identify a user (the schema's primary key).
            source: the file being imported, so a replayed row is recognised.
            clock: the wall clock, for each user's ``updated_at``.
        """
        self.clock = clock
        self.path = path
        self.tenant = tenant
        self.key = key
        self.source = source

    async def push(
        self,
        rows: Iterable[Mapping[str, str | int | None]],
        report: Callable[[Outcome], None],
    ) -> None:
        """Upsert every row; a missing attribute leaves the stored one alone."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            batch: list[tuple[str, str, str, str, float]] = []
            numbers: list[int] = []
            for row in rows:
                number = int(row["row"] or 0)
                attributes = {k: v for k, v in row.items() if k != "row" and v is not None}
                key = "\x1f".join(str(attributes.get(k, "")) for k in self.key)
                batch.append(
                    (self.tenant, key, json.dumps(attributes, ensure_ascii=False),
                     f"{self.source}:{number}", self.clock())
                )  # fmt: skip
                numbers.append(number)
                if len(batch) >= _CHUNK:
                    self._write(db, batch, numbers, report)
                    batch, numbers = [], []
            self._write(db, batch, numbers, report)
        finally:
            db.close()

    @staticmethod
    def concurrency() -> None:
        """Writes are one transaction at a time: nothing varies."""

    @staticmethod
    def _write(
        db: sqlite3.Connection,
        batch: list[tuple[str, str, str, str, float]],
        numbers: list[int],
        report: Callable[[Outcome], None],
    ) -> None:
        if not batch:
            return
        db.execute("BEGIN")
        db.executemany(_UPSERT, batch)
        db.execute("COMMIT")
        for number in numbers:
            report(Outcome(row=number, imported=True))
