"""A full snapshot's missing users in the journal: reported, or deactivated one by one.

A batch of a full-snapshot tenant records, with the safeguard's verdict
(:meth:`watcher.shell.journal.batches.Batches.check`), the users known for
its tenant and target that none of its rows names: their keys and the fields
that name them to the API, nothing else. Those to deactivate are ``pending``
until the API answers; a deactivation is recorded in the same transaction
that forgets the user's fingerprint, so a crash between the API's answer and
the record sends that deactivation once more at most (the same effect), and a
user deactivated is no longer known: when it comes back, it is new.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from watcher.core.records import MissingCounts
from watcher.core.states import MissingState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watcher.shell.journal._database import Database

__all__ = ["Missing", "MissingSet"]

_CHUNK = 500


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MissingSet:
    """A batch's missing users as found: whose, where, reported or to deactivate, who.

    ``users`` holds each user's key and the JSON of its identifying fields.
    """

    tenant: str
    target: str
    deactivate: bool
    users: Sequence[tuple[str, str | None]]


class Missing:
    """The missing users of one journal's batches."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def replace(self, batch_id: str, found: MissingSet) -> None:
        """Record a batch's missing users, replacing any found before; call inside a transaction."""
        self.db.execute("DELETE FROM missing WHERE batch_id = ?", (batch_id,))
        state = MissingState.PENDING if found.deactivate else MissingState.REPORTED
        self.db.dialect.insert_many(
            self.db,
            "missing",
            columns=("batch_id", "tenant", "target", "state", "key", "ident"),
            fixed=(batch_id, found.tenant, found.target, state),
            rows=list(found.users),
            types=("text", "text"),
        )

    def counts(self, batch_id: str) -> MissingCounts:
        """How many users the batch found missing, and what became of them."""
        by_state = dict(
            self.db.execute(
                "SELECT state, COUNT(*) FROM missing WHERE batch_id = ? GROUP BY state",
                (batch_id,),
            ).fetchall()
        )
        return MissingCounts(
            total=sum(by_state.values()),
            deactivated=by_state.get(MissingState.DEACTIVATED, 0),
            refused=by_state.get(MissingState.FAILED, 0),
            pending=by_state.get(MissingState.PENDING, 0),
        )

    def pending(self, batch_id: str) -> list[tuple[str, str | None]]:
        """The batch's users still to deactivate: key and identifying fields, by key."""
        return self.db.execute(
            "SELECT key, ident FROM missing WHERE batch_id = ? AND state = ? ORDER BY key",
            (batch_id, MissingState.PENDING),
        ).fetchall()

    def record_outcomes(
        self,
        batch_id: str,
        deactivated: Sequence[str],
        refused: Sequence[tuple[str, str, str]],
    ) -> None:
        """Users the API deactivated (no longer known), and those it refused (code, message)."""
        with self.db.transaction():
            row = self.db.execute(
                "SELECT tenant, target FROM missing WHERE batch_id = ? LIMIT 1", (batch_id,)
            ).fetchone()
            if row is None:
                return
            tenant, target = row
            for start in range(0, len(deactivated), _CHUNK):
                chunk = list(deactivated[start : start + _CHUNK])
                places = ",".join("?" * len(chunk))
                self.db.execute(
                    f"UPDATE missing SET state = ? WHERE batch_id = ? AND key IN ({places})",  # noqa: S608 - placeholders only
                    (MissingState.DEACTIVATED, batch_id, *chunk),
                )
                self.db.execute(
                    "DELETE FROM row_state WHERE tenant = ? AND target = ?"  # noqa: S608 - placeholders only
                    f" AND key IN ({places})",
                    (tenant, target, *chunk),
                )
            self.db.executemany(
                "UPDATE missing SET state = ?, code = ?, message = ?"
                " WHERE batch_id = ? AND key = ?",
                (
                    (MissingState.FAILED, code, message, batch_id, key)
                    for key, code, message in refused
                ),
            )

    def fail_pending(self, batch_id: str, code: str, message: str) -> None:
        """The batch's deactivations not sent fail with one reason (an operator discarded it)."""
        self.db.execute(
            "UPDATE missing SET state = ?, code = ?, message = ? WHERE batch_id = ? AND state = ?",
            (MissingState.FAILED, code, message, batch_id, MissingState.PENDING),
        )

    def listed(self, batch_id: str, limit: int) -> list[tuple[str, str, str | None, str | None]]:
        """The batch's first ``limit`` missing users by key: key, state, code and message."""
        return self.db.execute(
            "SELECT key, state, code, message FROM missing WHERE batch_id = ? ORDER BY key LIMIT ?",
            (batch_id, limit),
        ).fetchall()

    def forget(self, batch_ids: Sequence[str]) -> None:
        """Drop the batches' missing users (retention: the batch keeps their counts)."""
        with self.db.transaction():
            self.db.executemany("DELETE FROM missing WHERE batch_id = ?", ((b,) for b in batch_ids))
