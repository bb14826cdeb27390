"""Files in the journal: claimed or refused into a batch, named for ``.bak``, archived."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from watcher.core.names import from_stored, to_stored
from watcher.core.records import FileRecord
from watcher.core.states import UNFINISHED_FILE_STATES, FileState

if TYPE_CHECKING:
    from watcher.core.records import Identity
    from watcher.shell.journal._database import Database

__all__ = ["FILE_COLUMNS", "Files", "file_record"]

_FILE_FIELDS = tuple(f.name for f in dataclasses.fields(FileRecord))
FILE_COLUMNS = ", ".join(_FILE_FIELDS)
# States of files whose entry in the drop folder a batch still holds.
_HOLDING = tuple(s for s in UNFINISHED_FILE_STATES if s is not FileState.REFUSED)
_HELD = ",".join("?" * len(_HOLDING))


def file_record(row: tuple[Any, ...]) -> FileRecord:
    """A :class:`FileRecord` from a row of ``FILE_COLUMNS``."""
    values: dict[str, Any] = dict(zip(_FILE_FIELDS, row, strict=True))
    values["name"] = from_stored(values["name"])
    values["state"] = FileState(values["state"])
    if values["archive_name"] is not None:
        values["archive_name"] = from_stored(values["archive_name"])
    values["notes"] = tuple(json.loads(values["notes"])) if values["notes"] else ()
    return FileRecord(**values)


class Files:
    """The files of one journal's batches."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
        received_at: float | None = None,
    ) -> None:
        """Record a file copied into the spool, received at ``received_at`` (or now)."""
        self.db.execute(
            "INSERT INTO files (id, batch_id, tenant, name, state, dev, ino, size, mtime_ns,"
            " sha256, schema_digest, received_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                file_id,
                batch_id,
                tenant,
                to_stored(name),
                FileState.CLAIMED,
                identity.dev,
                identity.ino,
                identity.size,
                identity.mtime_ns,
                sha256,
                schema_digest,
                now if received_at is None else received_at,
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
            " received_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                file_id,
                batch_id,
                tenant,
                to_stored(name),
                FileState.REFUSED,
                code,
                message,
                now,
                now,
            ),
        )

    def get(self, file_id: str) -> FileRecord:
        """The file with ``file_id``; KeyError when there is none."""
        row = self.db.execute(
            f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?",  # noqa: S608 - constant columns
            (file_id,),
        ).fetchone()
        if row is None:
            raise KeyError(file_id)
        return file_record(row)

    def claimed_entries(self, tenant: str) -> set[tuple[str, int, int, int]]:
        """Name, device, inode and mtime of each file an unfinished batch holds.

        Refused entries are left out: a new upload under their name is new.
        """
        rows = self.db.execute(
            f"SELECT name, dev, ino, mtime_ns FROM files WHERE tenant = ? AND state IN ({_HELD})",  # noqa: S608 - placeholders
            (tenant, *_HOLDING),
        )
        return {(from_stored(name), dev, ino, mtime) for name, dev, ino, mtime in rows}

    def identical(self, record: FileRecord, since: float) -> tuple[str, float] | None:
        """The latest file of another batch with the same bytes, archived since ``since``.

        Its name and when it was received; None when there is none.
        """
        row = self.db.execute(
            "SELECT name, received_at FROM files WHERE tenant = ? AND sha256 = ?"
            " AND batch_id != ? AND state = ? AND received_at >= ?"
            " ORDER BY received_at DESC LIMIT 1",
            (record.tenant, record.sha256, record.batch_id, FileState.ARCHIVED, since),
        ).fetchone()
        return None if row is None else (from_stored(row[0]), float(row[1]))

    def count(self, state: FileState) -> int:
        """How many files are in ``state``."""
        row = self.db.execute("SELECT COUNT(*) FROM files WHERE state = ?", (state,)).fetchone()
        return int(row[0])

    def name_archive(self, file_id: str, archive_name: str, now: float) -> None:
        """Note the name a file will have in ``.bak``."""
        self.db.execute(
            "UPDATE files SET archive_name = ?, updated_at = ? WHERE id = ?",
            (to_stored(archive_name), now, file_id),
        )

    def mark_archived(self, file_id: str, now: float) -> None:
        """The file is in ``.bak``: its batch no longer holds it."""
        self.db.execute(
            "UPDATE files SET state = ?, attempts = 0, updated_at = ? WHERE id = ?",
            (FileState.ARCHIVED, now, file_id),
        )

    def count_attempt(self, file_id: str) -> int:
        """Note one more try at a file's current step; how many there have been.

        Committed before the step runs, so a try that kills the process (the
        OOM killer) is counted too. A change of state starts the count anew.
        """
        row = self.db.execute(
            "UPDATE files SET attempts = attempts + 1 WHERE id = ? RETURNING attempts", (file_id,)
        ).fetchone()
        if row is None:
            raise KeyError(file_id)
        return int(row[0])
