"""The journal: every batch's, file's and row's state, in SQLite.

A batch moves through ``claiming``, ``importing``, ``reporting``,
``archiving`` and ``done``; a file through ``claimed``, ``validated`` and
``archived`` (or ``refused`` and then ``archived``); a row is ``pending``,
``imported`` or ``failed``. Each step is one transaction, so after a crash
the batch resumes where the journal says it stopped. WAL mode with
``synchronous=NORMAL`` survives a killed process; ``watcher status`` can read
while the service writes.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from typing import TYPE_CHECKING, Any

from watcher.core.names import from_stored, to_stored
from watcher.errors import StateError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from watcher.shell.dropfolder import Identity

_SCHEMA = """
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
"""

UNFINISHED_FILE_STATES = ("claimed", "validated", "refused")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchRecord:
    """A batch as the journal holds it."""

    id: str
    tenant: str
    state: str
    created_at: float
    finished_at: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    """A file as the journal holds it."""

    id: str
    batch_id: str
    tenant: str
    name: str
    state: str
    dev: int | None
    ino: int | None
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    schema_digest: str | None
    code: str | None
    message: str | None
    encoding: str | None
    rows_blank: int
    archive_name: str | None
    attempts: int
    received_at: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """Row counts of a file: total = imported + failed + pending."""

    total: int = 0
    imported: int = 0
    failed: int = 0
    pending: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """A failure report waiting in, or sent from, the outbox."""

    id: str
    batch_id: str
    tenant: str
    path: str
    state: str
    attempts: int
    last_error: str | None


def new_id() -> str:
    """A fresh identifier for a batch, file or message."""
    return uuid.uuid4().hex


class Journal:
    """The journal database of one state folder."""

    def __init__(self, path: Path) -> None:
        """Open (or create) the journal.

        Raises:
            StateError: the folder or the database cannot be used (read-only,
                full, not a database, corrupted), with the path and the reason.
        """
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(_unusable(path, exc)) from exc
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            self.db.close()
            raise StateError(_unusable(path, exc)) from exc

    def _migrate(self) -> None:
        """Add what journals written by earlier versions lack."""
        for table, column, kind in (
            ("files", "attempts", "INTEGER NOT NULL DEFAULT 0"),
            ("batches", "stopped_reason", "TEXT"),
            ("batches", "stopped_since", "REAL"),
        ):
            columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column in columns:
                continue
            try:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:  # another connection was first
                if "duplicate column" not in str(exc):
                    raise

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def transaction(self) -> _Transaction:
        """``with journal.transaction():`` groups writes into one commit."""
        return _Transaction(self.db)

    # Schemas: the text a file was validated with, for an exact resume.

    def remember_schema(self, digest: str, text: bytes) -> None:
        """Keep a schema's text by its digest."""
        self.db.execute(
            "INSERT OR IGNORE INTO schemas (digest, text) VALUES (?, ?)", (digest, text)
        )

    def schema_text(self, digest: str) -> bytes:
        """The text of the schema with ``digest``."""
        row = self.db.execute("SELECT text FROM schemas WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            raise KeyError(digest)
        return bytes(row[0])

    # Batches.

    def open_batch(self, tenant: str, now: float) -> str:
        """Start a batch for ``tenant``; its id."""
        batch_id = new_id()
        self.db.execute(
            "INSERT INTO batches (id, tenant, state, created_at) VALUES (?, ?, 'claiming', ?)",
            (batch_id, tenant, now),
        )
        return batch_id

    def batch(self, batch_id: str) -> BatchRecord:
        """The batch with ``batch_id``."""
        row = self.db.execute(
            "SELECT id, tenant, state, created_at, finished_at FROM batches WHERE id = ?",
            (batch_id,),
        ).fetchone()
        if row is None:
            raise KeyError(batch_id)
        return BatchRecord(
            id=row[0], tenant=row[1], state=row[2], created_at=row[3], finished_at=row[4]
        )

    def unfinished_batches(self, tenant: str | None = None) -> list[BatchRecord]:
        """Batches not yet done, oldest first."""
        query = "SELECT id FROM batches WHERE state != 'done'"
        args: tuple[str, ...] = ()
        if tenant is not None:
            query += " AND tenant = ?"
            args = (tenant,)
        ids = [r[0] for r in self.db.execute(query + " ORDER BY created_at", args)]
        return [self.batch(i) for i in ids]

    def last_batch(self, tenant: str) -> BatchRecord | None:
        """The most recent finished batch of ``tenant``."""
        row = self.db.execute(
            "SELECT id FROM batches WHERE tenant = ? AND state = 'done' "
            "ORDER BY finished_at DESC LIMIT 1",
            (tenant,),
        ).fetchone()
        return None if row is None else self.batch(row[0])

    def note_stopped(self, batch_id: str, reason: str, now: float) -> None:
        """Record why a batch stopped with rows pending; ``since`` is the first such stop."""
        self.db.execute(
            "UPDATE batches SET stopped_reason = ?,"
            " stopped_since = COALESCE(stopped_since, ?) WHERE id = ?",
            (reason, now, batch_id),
        )

    def stopped(self, batch_id: str) -> tuple[str, float] | None:
        """Why a batch last stopped with rows pending, and since when; None if it never did."""
        row = self.db.execute(
            "SELECT stopped_reason, stopped_since FROM batches WHERE id = ?", (batch_id,)
        ).fetchone()
        return None if row is None or row[0] is None else (str(row[0]), float(row[1]))

    def set_batch_state(self, batch_id: str, state: str, now: float) -> None:
        """Move a batch to ``state``."""
        finished = now if state == "done" else None
        self.db.execute(
            "UPDATE batches SET state = ?, finished_at = ? WHERE id = ?",
            (state, finished, batch_id),
        )

    # Files.

    def add_claimed(
        self,
        *,
        batch_id: str,
        tenant: str,
        file_id: str,
        name: str,
        identity: Identity,
        sha256: str,
        schema_digest: str,
        now: float,
    ) -> None:
        """Record a file copied into the spool."""
        self.db.execute(
            "INSERT INTO files (id, batch_id, tenant, name, state, dev, ino, size, mtime_ns,"
            " sha256, schema_digest, received_at, updated_at)"
            " VALUES (?, ?, ?, ?, 'claimed', ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                file_id,
                batch_id,
                tenant,
                to_stored(name),
                identity.dev,
                identity.ino,
                identity.size,
                identity.mtime_ns,
                sha256,
                schema_digest,
                now,
                now,
            ),
        )

    def add_refused(
        self,
        *,
        batch_id: str,
        tenant: str,
        file_id: str,
        name: str,
        code: str,
        message: str,
        now: float,
    ) -> None:
        """Record a drop-folder entry that was not read, and why."""
        self.db.execute(
            "INSERT INTO files (id, batch_id, tenant, name, state, code, message,"
            " received_at, updated_at) VALUES (?, ?, ?, ?, 'refused', ?, ?, ?, ?)",
            (file_id, batch_id, tenant, to_stored(name), code, message, now, now),
        )

    def files(self, batch_id: str) -> list[FileRecord]:
        """The files of a batch, in the order they were added."""
        rows = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE batch_id = ?"  # noqa: S608 - constant columns
            " ORDER BY received_at, rowid",
            (batch_id,),
        )
        return [_file_record(row) for row in rows]

    def file(self, file_id: str) -> FileRecord:
        """The file with ``file_id``."""
        row = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?",  # noqa: S608 - constant columns
            (file_id,),
        ).fetchone()
        if row is None:
            raise KeyError(file_id)
        return _file_record(row)

    def in_progress(self, tenant: str) -> list[FileRecord]:
        """Files of ``tenant`` taken into a batch and not yet archived."""
        placeholders = ",".join("?" * len(UNFINISHED_FILE_STATES))
        rows = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files"  # noqa: S608 - constant columns, placeholders
            f" WHERE tenant = ? AND state IN ({placeholders})",
            (tenant, *UNFINISHED_FILE_STATES),
        )
        return [_file_record(row) for row in rows]

    def claimed_entries(self, tenant: str) -> set[tuple[str, int | None, int | None, int | None]]:
        """Name, device, inode and mtime of each file an unfinished batch holds.

        Refused entries are left out: a new upload under their name is new.
        """
        return {
            (f.name, f.dev, f.ino, f.mtime_ns)
            for f in self.in_progress(tenant)
            if f.state != "refused"
        }

    def record_validation(
        self,
        file_id: str,
        *,
        encoding: str | None,
        rows_blank: int,
        file_error: tuple[str, str] | None,
        valid_rows: Iterable[int],
        failed_rows: Iterable[int],
        failures: Iterable[tuple[int, str | None, str, str]],
        now: float,
    ) -> None:
        """Store a file's validation: every row pending or failed, with reasons.

        Safe to repeat: a file validated again (after a crash) replaces its rows.
        """
        with self.transaction():
            self.db.execute("DELETE FROM rows WHERE file_id = ?", (file_id,))
            self.db.execute("DELETE FROM failures WHERE file_id = ?", (file_id,))
            self.db.executemany(
                "INSERT INTO rows (file_id, row, state) VALUES (?, ?, 'pending')",
                ((file_id, r) for r in valid_rows),
            )
            self.db.executemany(
                "INSERT INTO rows (file_id, row, state) VALUES (?, ?, 'failed')",
                ((file_id, r) for r in failed_rows),
            )
            self.db.executemany(
                "INSERT INTO failures (file_id, row, field, code, message) VALUES (?, ?, ?, ?, ?)",
                ((file_id, *f) for f in failures),
            )
            code, message = file_error or (None, None)
            self.db.execute(
                "UPDATE files SET state = 'validated', encoding = ?, rows_blank = ?, code = ?,"
                " message = ?, attempts = 0, updated_at = ? WHERE id = ?",
                (encoding, rows_blank, code, message, now, file_id),
            )

    def pending_rows(self, file_id: str) -> list[int]:
        """The rows of a file still waiting for the API, in order."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT row FROM rows WHERE file_id = ? AND state = 'pending' ORDER BY row",
                (file_id,),
            )
        ]

    def record_outcomes(
        self,
        file_id: str,
        imported: Iterable[int],
        failed: Iterable[tuple[int, str, str]],
    ) -> None:
        """Store import outcomes: rows imported, and rows the API refused (code, message)."""
        failed = list(failed)
        with self.transaction():
            self.db.executemany(
                "UPDATE rows SET state = 'imported' WHERE file_id = ? AND row = ?",
                ((file_id, r) for r in imported),
            )
            self.db.executemany(
                "UPDATE rows SET state = 'failed' WHERE file_id = ? AND row = ?",
                ((file_id, r) for r, _, _ in failed),
            )
            self.db.executemany(
                "INSERT INTO failures (file_id, row, field, code, message)"
                " VALUES (?, ?, NULL, ?, ?)",
                ((file_id, r, code, message) for r, code, message in failed),
            )

    def counts(self, file_id: str) -> Counts:
        """Row counts of a file."""
        totals = dict(
            self.db.execute(
                "SELECT state, COUNT(*) FROM rows WHERE file_id = ? GROUP BY state", (file_id,)
            ).fetchall()
        )
        imported, failed, pending = (totals.get(s, 0) for s in ("imported", "failed", "pending"))
        return Counts(
            total=imported + failed + pending, imported=imported, failed=failed, pending=pending
        )

    def failure_kinds(self, file_id: str) -> list[tuple[int, str | None, str, str]]:
        """A file's row failures counted by field and code: (count, field, code, an example)."""
        return self.db.execute(
            "SELECT COUNT(*), field, code, MIN(message) FROM failures WHERE file_id = ?"
            " GROUP BY field, code ORDER BY COUNT(*) DESC, field, code",
            (file_id,),
        ).fetchall()

    def failures(self, file_id: str, rows: int) -> Iterator[tuple[int, str | None, str, str]]:
        """The row failures (row, field, code, message) of a file's first ``rows`` failed rows.

        In row order; a report never lists more, however many there are.
        """
        yield from self.db.execute(
            "SELECT row, field, code, message FROM failures WHERE file_id = ? AND row <= ("
            " SELECT MAX(row) FROM (SELECT DISTINCT row FROM failures WHERE file_id = ?"
            " ORDER BY row LIMIT ?)) ORDER BY row, rowid",
            (file_id, file_id, rows),
        )

    def set_file_state(
        self, file_id: str, state: str, now: float, *, archive_name: str | None = None
    ) -> None:
        """Move a file to ``state``, noting its archive name when given.

        A change of state starts the count of attempts at the next step anew.
        """
        self.db.execute(
            "UPDATE files SET archive_name = COALESCE(?, archive_name),"
            " attempts = CASE WHEN state = ? THEN attempts ELSE 0 END,"
            " state = ?, updated_at = ? WHERE id = ?",
            (None if archive_name is None else to_stored(archive_name), state, state, now, file_id),
        )

    def count_attempt(self, file_id: str) -> int:
        """Note one more try at a file's current step; how many there have been.

        Committed before the step runs, so a try that kills the process (the
        OOM killer) is counted too.
        """
        row = self.db.execute(
            "UPDATE files SET attempts = attempts + 1 WHERE id = ? RETURNING attempts", (file_id,)
        ).fetchone()
        if row is None:
            raise KeyError(file_id)
        return int(row[0])

    # Messages.

    def queue_message(
        self, *, message_id: str, batch_id: str, tenant: str, path: str, now: float
    ) -> None:
        """Record a failure report written to the outbox (once per batch)."""
        self.db.execute(
            "INSERT OR IGNORE INTO messages (id, batch_id, tenant, path, state, created_at)"
            " VALUES (?, ?, ?, ?, 'queued', ?)",
            (message_id, batch_id, tenant, path, now),
        )

    def messages(self, state: str = "queued") -> list[MessageRecord]:
        """Messages in ``state``, oldest first."""
        rows = self.db.execute(
            "SELECT id, batch_id, tenant, path, state, attempts, last_error FROM messages"
            " WHERE state = ? ORDER BY created_at",
            (state,),
        )
        return [
            MessageRecord(
                id=r[0],
                batch_id=r[1],
                tenant=r[2],
                path=r[3],
                state=r[4],
                attempts=r[5],
                last_error=r[6],
            )
            for r in rows
        ]

    def mark_message(
        self, message_id: str, state: str, now: float, *, error: str | None = None
    ) -> None:
        """Record a delivery attempt's result."""
        self.db.execute(
            "UPDATE messages SET state = ?, attempts = attempts + 1, last_error = ?,"
            " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?",
            (state, error, state, now, message_id),
        )

    def claim_message(self, message_id: str) -> bool:
        """Take a queued message for sending; False when another deliverer has it.

        Two deliverers in one service (a batch's worker, the rescan's mail
        worker) must never send the same message.
        """
        cursor = self.db.execute(
            "UPDATE messages SET state = 'sending' WHERE id = ? AND state = 'queued'",
            (message_id,),
        )
        return cursor.rowcount == 1

    def requeue_sending(self) -> int:
        """Queue again what a process that died was sending; how many.

        Only at start, with the state folder's lock held: nothing else sends.
        The server may have accepted a message just before the death; it is
        sent again with the same Message-ID.
        """
        cursor = self.db.execute("UPDATE messages SET state = 'queued' WHERE state = 'sending'")
        return cursor.rowcount

    def message_count(self, state: str = "queued", tenant: str | None = None) -> int:
        """How many messages are in ``state``."""
        query, args = "SELECT COUNT(*) FROM messages WHERE state = ?", [state]
        if tenant is not None:
            query += " AND tenant = ?"
            args.append(tenant)
        return int(self.db.execute(query, args).fetchone()[0])


_FILE_FIELDS = tuple(f.name for f in dataclasses.fields(FileRecord))
_FILE_COLUMNS = ", ".join(_FILE_FIELDS)


def _file_record(row: tuple[object, ...]) -> FileRecord:
    values: dict[str, Any] = dict(zip(_FILE_FIELDS, row, strict=True))
    values["name"] = from_stored(values["name"])
    if values["archive_name"] is not None:
        values["archive_name"] = from_stored(values["archive_name"])
    return FileRecord(**values)


class _Transaction:
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


def now() -> float:
    """The wall-clock time journal entries carry."""
    return time.time()
