"""What the journal knows of each user: the fingerprint last confirmed, per tenant and target.

A *target* is where users go: the API's URL, or ``embedded`` for the
embedded store. A fingerprint is confirmed in the same transaction that
records its row as imported (see :meth:`watcher.shell.journal.rows.Rows.
record_outcomes`), so a crash between the API's answer and the record sends
that row once more at most: an upsert, the same effect.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.changes import KNOWN

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from watcher.shell.journal._database import Database

__all__ = ["Confirmed", "Users", "confirm"]

_CHUNK = 500
_KNOWN = (
    "SELECT key, digest, fields, confirmed_at FROM row_state"
    " WHERE tenant = ? AND target = ? AND key IN ({places})"
)
_EVERY = {"key": pl.String, "ident": pl.String}


_UPSERT = (
    "ON CONFLICT (tenant, target, key) DO UPDATE SET digest = excluded.digest,"
    " fields = excluded.fields, confirmed_at = excluded.confirmed_at, ident = excluded.ident"
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Confirmed:
    """Fingerprints to confirm with imported rows: whose, where, when, and each row's."""

    tenant: str
    target: str
    now: float
    # Row number to (user key, digest, field checksums).
    prints: dict[int, tuple[str, str, str]]
    # Row number to the JSON of the fields naming the user to the API (full snapshots).
    idents: dict[int, str] = dataclasses.field(default_factory=dict)


class Users:
    """The confirmed fingerprints of one journal's users."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def known(self, tenant: str, target: str, keys: Sequence[str]) -> pl.DataFrame:
        """What is confirmed for ``keys`` (:data:`watcher.core.changes.KNOWN`)."""
        found: list[tuple[str, str, str, float]] = []
        unique = sorted(set(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            query = _KNOWN.format(places=",".join("?" * len(chunk)))
            found.extend(self.db.execute(query, (tenant, target, *chunk)))
        return pl.DataFrame(found, schema=KNOWN, orient="row")

    def every(self, tenant: str, target: str) -> pl.DataFrame:
        """Every user known for ``tenant`` and ``target``: key and identifying fields (JSON)."""
        found = self.db.execute(
            "SELECT key, ident FROM row_state WHERE tenant = ? AND target = ?", (tenant, target)
        ).fetchall()
        return pl.DataFrame(found, schema=_EVERY, orient="row")

    def count(self, tenant: str, target: str) -> int:
        """How many users of ``tenant`` have a fingerprint confirmed for ``target``."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM row_state WHERE tenant = ? AND target = ?", (tenant, target)
        ).fetchone()
        return int(row[0])


def confirm(db: Database, confirmed: Confirmed, rows: Iterable[int]) -> None:
    """Record the fingerprints of ``rows``, imported; call inside the outcome's transaction."""
    idents = confirmed.idents
    prints = [(*confirmed.prints[row], idents.get(row)) for row in rows if row in confirmed.prints]
    # A user twice in the rows keeps its later fingerprint, as one upsert per row
    # would (and one statement may not change a row twice).
    latest = {found[0]: found for found in prints}
    db.dialect.insert_many(
        db,
        "row_state",
        columns=("tenant", "target", "confirmed_at", "key", "digest", "fields", "ident"),
        fixed=(confirmed.tenant, confirmed.target, confirmed.now),
        rows=list(latest.values()),
        types=("text", "text", "text", "text"),
        tail=_UPSERT,
    )
