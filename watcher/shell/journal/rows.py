"""Rows in the journal: each pending, imported or failed, and why it failed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from watcher.core.states import FileState, RowState
from watcher.shell.journal.dialects import runs
from watcher.shell.journal.users import confirm

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from watcher.shell.journal._database import Database
    from watcher.shell.journal.users import Confirmed

__all__ = ["Failure", "Rows"]

# A row's failure: row number, field (None for the row as a whole), code, message.
Failure = tuple[int, str | None, str, str]


class Rows:
    """The rows of one journal's files."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record_validation(
        self,
        file_id: str,
        *,
        encoding: str | None,
        rows_blank: int,
        file_error: tuple[str, str] | None,
        valid_rows: Iterable[int],
        failed_rows: Iterable[int],
        failures: Iterable[Failure],
        now: float,
        notes: Sequence[str] = (),
    ) -> None:
        """Store a file's validation: every row pending or failed, with reasons, and its notes.

        The file becomes ``validated``. Safe to repeat: a file validated again
        (after a crash) replaces its rows. One transaction.
        """
        with self.db.transaction():
            self._replace(file_id, valid_rows, failed_rows, failures)
            code, message = file_error or (None, None)
            self.db.execute(
                "UPDATE files SET state = ?, encoding = ?, rows_blank = ?, code = ?,"
                " message = ?, attempts = 0, updated_at = ?, notes = ? WHERE id = ?",
                (
                    FileState.VALIDATED,
                    encoding,
                    rows_blank,
                    code,
                    message,
                    now,
                    json.dumps(list(notes)) if notes else None,
                    file_id,
                ),
            )

    def _replace(
        self,
        file_id: str,
        valid_rows: Iterable[int],
        failed_rows: Iterable[int],
        failures: Iterable[Failure],
    ) -> None:
        self.db.execute("DELETE FROM rows WHERE file_id = ?", (file_id,))
        self.db.execute("DELETE FROM failures WHERE file_id = ?", (file_id,))
        self._insert_rows(file_id, list(valid_rows), RowState.PENDING)
        self._insert_rows(file_id, list(failed_rows), RowState.FAILED)
        self._insert_failures(file_id, [(r, field, code, m) for r, field, code, m in failures])

    def _insert_rows(self, file_id: str, rows: list[int], state: RowState) -> None:
        """Rows of a file in ``state``, in few statements."""
        self.db.dialect.insert_many(
            self.db,
            "rows",
            columns=("file_id", "state", "row"),
            fixed=(file_id, state),
            rows=[(r,) for r in rows],
            types=("integer",),
        )

    def _insert_failures(self, file_id: str, failures: list[Failure]) -> None:
        """Failures of a file's rows, in order, in few statements."""
        self.db.dialect.insert_many(
            self.db,
            "failures",
            columns=("file_id", "row", "field", "code", "message"),
            fixed=(file_id,),
            rows=failures,
            types=("integer", "text", "text", "text"),
        )

    def _set_state(self, file_id: str, rows: Sequence[int], state: RowState) -> None:
        """Rows of a file now in ``state``, in few statements."""
        self.db.dialect.update_rows(
            self.db,
            "UPDATE rows SET state = ? WHERE file_id = ? AND {rows}",
            (state, file_id),
            rows,
        )

    def pending(self, file_id: str) -> list[int]:
        """The rows of a file still waiting for the API, in order."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT row FROM rows WHERE file_id = ? AND state = ? ORDER BY row",
                (file_id, RowState.PENDING),
            )
        ]

    def record_outcomes(
        self,
        file_id: str,
        imported: Sequence[int],
        failed: Iterable[tuple[int, str, str]],
        confirmed: Confirmed | None = None,
    ) -> None:
        """Store import outcomes: rows imported, and rows the API refused (code, message).

        With ``confirmed``, the fingerprints of the imported rows are
        confirmed for their users in the same transaction.
        """
        failed = list(failed)
        with self.db.transaction():
            if confirmed is not None:
                confirm(self.db, confirmed, imported)
            self._set_state(file_id, imported, RowState.IMPORTED)
            self._set_state(file_id, [r for r, _, _ in failed], RowState.FAILED)
            self._insert_failures(file_id, [(r, None, code, m) for r, code, m in failed])

    def fail_file(self, file_id: str, code: str, message: str) -> None:
        """Fail a validated file as a whole: its pending rows fail with the file's reason."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE files SET code = ?, message = ? WHERE id = ?", (code, message, file_id)
            )
            self.db.execute(
                "UPDATE rows SET state = ? WHERE file_id = ? AND state = ?",
                (RowState.FAILED, file_id, RowState.PENDING),
            )

    def mark_unchanged(self, file_id: str, rows: Iterable[int]) -> None:
        """Pending rows that would send what is confirmed for their users: not sent.

        One statement per run of consecutive rows, not per row: a snapshot with
        1% changed is a thousand runs, not a hundred thousand rows.
        """
        with self.db.transaction():
            self.db.executemany(
                "UPDATE rows SET state = ? WHERE file_id = ? AND row BETWEEN ? AND ? AND state = ?",
                (
                    (RowState.UNCHANGED, file_id, low, high, RowState.PENDING)
                    for low, high in runs(rows)
                ),
            )

    def forget(self, file_ids: Sequence[str]) -> int:
        """Drop the per-row detail of files, keeping their counts; how many lost detail.

        For retention: a finished batch's counts outlive its rows and reasons.
        """
        dropped = 0
        with self.db.transaction():
            for file_id in file_ids:
                counts = dict(
                    self.db.execute(
                        "SELECT state, COUNT(*) FROM rows WHERE file_id = ? GROUP BY state",
                        (file_id,),
                    ).fetchall()
                )
                if not counts:
                    continue
                kept = {str(s): counts.get(s, 0) for s in RowState if s is not RowState.PENDING}
                kept["pending"] = counts.get(RowState.PENDING, 0)
                kept["total"] = sum(counts.values())
                self.db.execute(
                    "UPDATE files SET counts = ? WHERE id = ?", (json.dumps(kept), file_id)
                )
                self.db.execute("DELETE FROM rows WHERE file_id = ?", (file_id,))
                self.db.execute("DELETE FROM failures WHERE file_id = ?", (file_id,))
                dropped += 1
        return dropped

    def listed_failures(self, file_id: str, rows: int) -> list[Failure]:
        """The failures of a file's first ``rows`` failed rows, in row order.

        A report never lists more, however many there are.
        """
        return self.db.execute(
            "SELECT row, field, code, message FROM failures WHERE file_id = ? AND row <= ("  # noqa: S608 - a constant column
            " SELECT MAX(row) FROM (SELECT DISTINCT row FROM failures WHERE file_id = ?"
            f" ORDER BY row LIMIT ?) AS first) ORDER BY row, {self.db.dialect.order}",
            (file_id, file_id, rows),
        ).fetchall()
