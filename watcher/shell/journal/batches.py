"""Batches in the journal: opening one, reading it whole, moving it to its next step."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from watcher.core.changes import ChangeSummary
from watcher.core.records import BatchRecord, BatchView, Counts, FileView, Reason
from watcher.core.states import BatchState, RowState, Safeguard, next_step
from watcher.shell.journal._database import UNFINISHED
from watcher.shell.journal.files import FILE_COLUMNS, file_record
from watcher.shell.journal.missing import Missing

if TYPE_CHECKING:
    from watcher.shell.journal._database import Database
    from watcher.shell.journal.dialects import Dialect
    from watcher.shell.journal.missing import MissingSet

__all__ = ["Batches"]

_BATCH_COLUMNS = (
    "id, tenant, state, created_at, finished_at, stopped_reason, stopped_since, safeguard, changes"
)

# One statement for a batch, its files, their row counts and their reasons:
# each step reads its batch once. The reasons come as a JSON array, built
# with each database's own functions; files keep the order they were claimed in.
_VIEW_TEMPLATE = """
WITH mine AS (SELECT id FROM files WHERE batch_id = :batch),
counts AS (
    SELECT file_id,
        COUNT(*) FILTER (WHERE state = '{imported}') AS imported,
        COUNT(*) FILTER (WHERE state = '{unchanged}') AS unchanged,
        COUNT(*) FILTER (WHERE state = '{failed}') AS failed,
        COUNT(*) FILTER (WHERE state = '{pending}') AS pending
    FROM rows WHERE file_id IN (SELECT id FROM mine) GROUP BY file_id
),
kinds AS (
    SELECT file_id, {array} AS reasons
    FROM (
        SELECT file_id, COUNT(*) AS n, field, code, MIN(message) AS example
        FROM failures WHERE file_id IN (SELECT id FROM mine) GROUP BY file_id, field, code
    ) AS grouped GROUP BY file_id
)
SELECT {columns},
    counts.imported, counts.unchanged, counts.failed, counts.pending, kinds.reasons,
    f.counts
FROM files AS f
LEFT JOIN counts ON counts.file_id = f.id
LEFT JOIN kinds ON kinds.file_id = f.id
WHERE f.batch_id = :batch
ORDER BY f.received_at, f.{order}
"""
_VIEWS: dict[str, str] = {}


def _view(dialect: Dialect) -> str:
    """The batch view's statement in ``dialect``, made once."""
    if dialect.name not in _VIEWS:
        _VIEWS[dialect.name] = _VIEW_TEMPLATE.format(
            imported=RowState.IMPORTED,
            unchanged=RowState.UNCHANGED,
            failed=RowState.FAILED,
            pending=RowState.PENDING,
            columns=", ".join(f"f.{c.strip()}" for c in FILE_COLUMNS.split(",")),
            array=dialect.json_list("n, field, code, example"),
            order=dialect.order,
        )
    return _VIEWS[dialect.name]


class Batches:
    """The batches of one journal."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, tenant: str, batch_id: str, now: float) -> None:
        """Start a batch for ``tenant`` in its first step, claiming."""
        self.db.execute(
            "INSERT INTO batches (id, tenant, state, created_at) VALUES (?, ?, ?, ?)",
            (batch_id, tenant, BatchState.CLAIMING, now),
        )

    def get(self, batch_id: str) -> BatchRecord:
        """The batch with ``batch_id``; KeyError when there is none."""
        row = self.db.execute(
            f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?",  # noqa: S608 - constant columns
            (batch_id,),
        ).fetchone()
        if row is None:
            raise KeyError(batch_id)
        return _batch_record(row)

    def view(self, batch_id: str) -> BatchView:
        """The batch with its files, each with its row counts and reasons, in one read."""
        batch = self.get(batch_id)
        files = []
        for row in self.db.execute(_view(self.db.dialect), {"batch": batch_id}):
            *record, imported, unchanged, failed, pending, reasons, kept = row
            counts = Counts(
                total=(imported or 0) + (unchanged or 0) + (failed or 0) + (pending or 0),
                imported=imported or 0,
                unchanged=unchanged or 0,
                failed=failed or 0,
                pending=pending or 0,
            )
            if kept is not None:  # its rows are gone (retention): the counts kept for it
                counts = Counts(**json.loads(kept))
            files.append(
                FileView(
                    record=file_record(tuple(record)), counts=counts, reasons=_reasons(reasons)
                )
            )
        return BatchView(batch=batch, files=tuple(files), missing=Missing(self.db).counts(batch_id))

    def unfinished(self, tenant: str | None = None) -> list[BatchRecord]:
        """Batches not yet done (of one tenant, or all), oldest first."""
        query = f"SELECT {_BATCH_COLUMNS} FROM batches WHERE {UNFINISHED}"  # noqa: S608 - constant
        args: tuple[str, ...] = ()
        if tenant is not None:
            query += " AND tenant = ?"
            args = (*args, tenant)
        return [_batch_record(r) for r in self.db.execute(query + " ORDER BY created_at", args)]

    def last_done(self, tenant: str) -> BatchRecord | None:
        """The most recently finished batch of ``tenant``."""
        row = self.db.execute(
            f"SELECT {_BATCH_COLUMNS} FROM batches WHERE tenant = ? AND state = ?"  # noqa: S608
            " ORDER BY finished_at DESC LIMIT 1",
            (tenant, BatchState.DONE),
        ).fetchone()
        return None if row is None else _batch_record(row)

    def advance(self, batch_id: str, state: BatchState, now: float) -> BatchState:
        """Move a batch from ``state`` to its next step; the new state.

        Raises:
            RuntimeError: the batch is not in ``state`` (another run moved it).
        """
        after = next_step(state)
        cursor = self.db.execute(
            "UPDATE batches SET state = ?, finished_at = ? WHERE id = ? AND state = ?",
            (after, now if after is BatchState.DONE else None, batch_id, state),
        )
        if cursor.rowcount != 1:
            raise RuntimeError(f"batch {batch_id} is not in state {state}")
        return after

    def note_stopped(self, batch_id: str, reason: str, now: float) -> None:
        """Record why a batch stopped with rows pending; ``since`` is the first such stop."""
        self.db.execute(
            "UPDATE batches SET stopped_reason = ?,"
            " stopped_since = COALESCE(stopped_since, ?) WHERE id = ?",
            (reason, now, batch_id),
        )

    def check(
        self,
        batch_id: str,
        verdict: Safeguard,
        changes: ChangeSummary,
        missing: MissingSet | None = None,
    ) -> None:
        """Record the safeguard's verdict (passed or held), what it found, and who is missing.

        One transaction: a batch checked has its missing users recorded.
        """
        with self.db.transaction():
            if missing is not None:
                Missing(self.db).replace(batch_id, missing)
            self.db.execute(
                "UPDATE batches SET safeguard = ?, changes = ? WHERE id = ?",
                (verdict, changes.to_json(), batch_id),
            )

    def decide(self, batch_id: str, decision: Safeguard) -> bool:
        """An operator approves or discards a held batch; False when it is not held."""
        cursor = self.db.execute(
            "UPDATE batches SET safeguard = ? WHERE id = ? AND safeguard = ? AND state != ?",
            (decision, batch_id, Safeguard.HELD, BatchState.DONE),
        )
        return cursor.rowcount == 1

    def finished_before(self, tenant: str, before: float) -> list[str]:
        """The ids of ``tenant``'s batches done before ``before`` (for retention)."""
        return [
            r[0]
            for r in self.db.execute(
                "SELECT id FROM batches WHERE tenant = ? AND state = ? AND finished_at < ?",
                (tenant, BatchState.DONE, before),
            )
        ]

    def remember_schema(self, digest: str, text: bytes) -> None:
        """Keep a schema's text by its digest, for an exact resume."""
        self.db.execute(
            "INSERT INTO schemas (digest, text) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (digest, text),
        )

    def schema_text(self, digest: str) -> bytes:
        """The text of the schema with ``digest``; KeyError when it was never kept."""
        row = self.db.execute("SELECT text FROM schemas WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            raise KeyError(digest)
        return bytes(row[0])


def _batch_record(row: tuple[Any, ...]) -> BatchRecord:
    batch_id, tenant, state, created_at, finished_at, reason, since, safeguard, changes = row
    return BatchRecord(
        id=batch_id,
        tenant=tenant,
        state=BatchState(state),
        created_at=created_at,
        finished_at=finished_at,
        stopped=None if reason is None else (reason, since),
        safeguard=None if safeguard is None else Safeguard(safeguard),
        changes=None if changes is None else ChangeSummary.from_json(changes),
    )


def _reasons(text: str | None) -> tuple[Reason, ...]:
    """A file's reasons from the view's JSON, most frequent first."""
    if text is None:
        return ()
    found = [
        Reason(count=n, field=field, code=code, example=example)
        for n, field, code, example in json.loads(text)
    ]
    return tuple(sorted(found, key=lambda r: (-r.count, r.field or "", r.code)))
