"""What the journal tells people of past batches: the page, ``watcher status`` and metrics.

Each batch's files and row counts are kept on the batch when it is done
(:meth:`History.keep`), so a year of batches for hundreds of tenants is read
from the batches alone: the last batch of every tenant in one query, a
tenant's recent batches and its rows per day from its own index.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from watcher.core.records import Counts
from watcher.core.states import BatchState, MessageState, RowState, Safeguard
from watcher.shell.journal._database import UNFINISHED
from watcher.shell.journal.batches import Batches

if TYPE_CHECKING:
    from watcher.core.records import BatchView
    from watcher.shell.journal._database import Database
    from watcher.shell.journal.dialects import Dialect

__all__ = ["Day", "History", "Past"]

_DAY = 86400


# Rows per day (UTC) of a tenant's finished batches, from the counts kept on each.
def _daily(dialect: Dialect) -> str:
    """Rows imported, unchanged and failed per UTC day, from finished batches' counts."""
    counted = ", ".join(
        f"SUM({dialect.json_integer('counts', 'counts', kind)})"
        for kind in ("imported", "unchanged", "failed")
    )
    return (
        f"SELECT {dialect.day('finished_at')}, {counted}"  # noqa: S608 - the journal's own words
        " FROM batches WHERE tenant = ? AND state = ? AND finished_at >= ? GROUP BY 1"
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Past:
    """A batch as people look back at it: when, which files, what became of the rows."""

    id: str
    tenant: str
    state: BatchState
    created_at: float
    finished_at: float | None
    files: tuple[str, ...]
    counts: Counts
    codes: tuple[tuple[str, int], ...] = ()  # the most common failure codes, with how often
    received_at: float | None = None  # when its first file arrived (None: not kept)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Day:
    """Rows of a tenant's batches finished on one day (UTC)."""

    day: str
    imported: int
    unchanged: int
    failed: int


class History:
    """The past batches of one journal, read for people."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def keep(self, view: BatchView) -> None:
        """Keep a finished batch's file names and counts on the batch itself."""
        kept = {
            "files": [f.record.name for f in view.files],
            "counts": dataclasses.asdict(view.counts),
            "received": min((f.record.received_at for f in view.files), default=None),
        }
        self.db.execute("UPDATE batches SET counts = ? WHERE id = ?", (json.dumps(kept), view.id))

    def backfill(self, since: float) -> int:
        """Keep the files and counts of batches finished since ``since`` without them.

        Batches finished before they were kept on the batch (an older
        version) are read once, so the page's chart and list cover them.
        """
        views = Batches(self.db)
        done = self.db.execute(
            "SELECT id FROM batches WHERE state = ? AND counts IS NULL AND finished_at >= ?",
            (BatchState.DONE, since),
        ).fetchall()
        for (batch_id,) in done:
            self.keep(views.view(batch_id))
        return len(done)

    def recent(self, tenant: str, limit: int = 50) -> list[Past]:
        """The tenant's last ``limit`` batches, newest first, each with its commonest codes."""
        rows = self.db.execute(
            "SELECT id, tenant, state, created_at, finished_at, counts FROM batches"
            " WHERE tenant = ? ORDER BY created_at DESC LIMIT ?",
            (tenant, limit),
        ).fetchall()
        found = [self._past(row, codes=self._codes(row[0])) for row in rows]
        # An unfinished batch (importing, held) has no counts kept on it yet:
        # its live ones, so the list agrees with the banner's pending rows.
        return [past if past.state is BatchState.DONE else self._live(past) for past in found]

    def _live(self, past: Past) -> Past:
        view = Batches(self.db).view(past.id)
        return dataclasses.replace(
            past,
            files=tuple(f.record.name for f in view.files),
            counts=view.counts,
            received_at=min((f.record.received_at for f in view.files), default=None),
        )

    def last_done(self, tenant: str | None = None) -> dict[str, Past]:
        """Every tenant's last finished batch (or only ``tenant``'s), in one read."""
        if tenant is not None:
            row = self.db.execute(
                "SELECT id, tenant, state, created_at, finished_at, counts FROM batches"
                " WHERE tenant = ? AND state = ? ORDER BY finished_at DESC LIMIT 1",
                (tenant, BatchState.DONE),
            ).fetchone()
            return {} if row is None else {tenant: self._past(row)}
        # Each tenant's last batch found through the index on (tenant, state,
        # finished_at): a few lookups per tenant, not a pass over the year.
        rows = self.db.execute(
            "SELECT b.id, b.tenant, b.state, b.created_at, b.finished_at, b.counts"
            " FROM (SELECT DISTINCT tenant FROM batches) AS t JOIN batches AS b ON b.id ="
            " (SELECT id FROM batches WHERE tenant = t.tenant AND state = ?"
            " ORDER BY finished_at DESC LIMIT 1)",
            (BatchState.DONE,),
        ).fetchall()
        return {row[1]: self._past(row) for row in rows}

    def daily(self, tenant: str, *, days: int, now: float) -> list[Day]:
        """Rows imported, unchanged and failed per day, the last ``days`` days, oldest first."""
        start = (int(now) // _DAY - days + 1) * _DAY
        found = {
            day: (imported or 0, unchanged or 0, failed or 0)
            for day, imported, unchanged, failed in self.db.execute(
                _daily(self.db.dialect), (tenant, BatchState.DONE, start)
            )
        }
        result = []
        for n in range(days):
            day = time.strftime("%Y-%m-%d", time.gmtime(start + n * _DAY))
            imported, unchanged, failed = found.get(day, (0, 0, 0))
            result.append(Day(day=day, imported=imported, unchanged=unchanged, failed=failed))
        return result

    def pending(self, tenant: str | None = None) -> dict[str, int]:
        """Rows waiting for the API, per tenant (or only ``tenant``'s)."""
        mine, args = _only(tenant, "b.")
        query = (
            "SELECT b.tenant, COUNT(*) FROM batches AS b JOIN files AS f"  # noqa: S608 - constants
            f" ON f.batch_id = b.id JOIN rows AS r ON r.file_id = f.id WHERE b.{UNFINISHED}{mine}"
            " AND r.state = ? GROUP BY b.tenant"
        )
        return dict(self.db.execute(query, (*args, RowState.PENDING)).fetchall())

    def held(self) -> dict[str, int]:
        """Batches held for an operator, per tenant."""
        return dict(
            self.db.execute(
                f"SELECT tenant, COUNT(*) FROM batches WHERE {UNFINISHED}"  # noqa: S608 - constant
                " AND safeguard = ? GROUP BY tenant",
                (Safeguard.HELD,),
            ).fetchall()
        )

    def outbox(self) -> dict[str, int]:
        """Messages waiting to be sent, per tenant."""
        return dict(
            self.db.execute(
                "SELECT tenant, COUNT(*) FROM messages WHERE state IN (?, ?) GROUP BY tenant",
                (MessageState.QUEUED, MessageState.SENDING),
            ).fetchall()
        )

    def _codes(self, batch_id: str, most: int = 3) -> tuple[tuple[str, int], ...]:
        """The batch's commonest codes by the rows they failed.

        A file that failed whole counts the rows it failed (at least one, for
        a file with none, such as an empty one), so a header no schema knows,
        failing every row, is not outranked by a rule that failed two.
        """
        rows = self.db.execute(
            "SELECT code, COUNT(*) FROM failures WHERE file_id IN"
            " (SELECT id FROM files WHERE batch_id = ?) GROUP BY code"
            " UNION ALL SELECT f.code, SUM(CASE WHEN n.failed > 0 THEN n.failed ELSE 1 END)"
            " FROM files AS f JOIN (SELECT f2.id, COUNT(r.row) AS failed FROM files AS f2"
            " LEFT JOIN rows AS r ON r.file_id = f2.id AND r.state = ?"
            " WHERE f2.batch_id = ? AND f2.code IS NOT NULL GROUP BY f2.id) AS n ON n.id = f.id"
            " WHERE f.code IS NOT NULL GROUP BY f.code ORDER BY 2 DESC, 1 LIMIT ?",
            (batch_id, RowState.FAILED, batch_id, most),
        ).fetchall()
        return tuple((str(code), int(count)) for code, count in rows)

    def _past(self, row: tuple[Any, ...], codes: tuple[tuple[str, int], ...] = ()) -> Past:
        batch_id, tenant, state, created_at, finished_at, kept = row
        files: tuple[str, ...] = ()
        counts = Counts()
        received = None
        if isinstance(kept, str):
            document = json.loads(kept)
            files = tuple(document["files"])
            counts = Counts(**document["counts"])
            received = document.get("received")  # kept since this release
        return Past(
            id=batch_id,
            tenant=tenant,
            state=BatchState(state),
            created_at=created_at,
            finished_at=finished_at,
            files=files,
            counts=counts,
            codes=codes,
            received_at=received,
        )


def _only(tenant: str | None, table: str = "") -> tuple[str, tuple[str, ...]]:
    """A condition keeping only ``tenant``'s rows (none when ``tenant`` is None), and its value."""
    return ("", ()) if tenant is None else (f" AND {table}tenant = ?", (tenant,))
