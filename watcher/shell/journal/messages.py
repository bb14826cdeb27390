"""Messages in the journal: reports queued in the outbox, claimed, sent or rejected."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.core.records import MessageRecord
from watcher.core.states import MessageState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watcher.shell.journal._database import Database

__all__ = ["Messages"]


class Messages:
    """The outbox's messages of one journal."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def queue(self, *, message_id: str, batch_id: str, tenant: str, path: str, now: float) -> None:
        """Record a report written to the outbox (once per batch: a repeat changes nothing)."""
        self.db.execute(
            "INSERT INTO messages (id, batch_id, tenant, path, state, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (message_id, batch_id, tenant, path, MessageState.QUEUED, now),
        )

    def in_state(self, state: MessageState) -> list[MessageRecord]:
        """Messages in ``state``, oldest first."""
        rows = self.db.execute(
            "SELECT id, batch_id, tenant, path, state, attempts, last_error, sent_at FROM messages"
            " WHERE state = ? ORDER BY created_at",
            (state,),
        )
        return [
            MessageRecord(
                id=r[0],
                batch_id=r[1],
                tenant=r[2],
                path=r[3],
                state=MessageState(r[4]),
                attempts=r[5],
                last_error=r[6],
                sent_at=r[7],
            )
            for r in rows
        ]

    def sent_before(self, tenant: str, before: float) -> list[MessageRecord]:
        """``tenant``'s messages the server accepted before ``before`` (for retention)."""
        return [
            m
            for m in self.in_state(MessageState.SENT)
            if m.tenant == tenant and m.sent_at is not None and m.sent_at < before
        ]

    def mark(
        self, message_id: str, state: MessageState, now: float, *, error: str | None = None
    ) -> None:
        """Record a delivery attempt's result."""
        self.db.execute(
            "UPDATE messages SET state = ?, attempts = attempts + 1, last_error = ?,"
            " sent_at = COALESCE(?, sent_at) WHERE id = ?",
            (state, error, now if state is MessageState.SENT else None, message_id),
        )

    def claim(self, message_id: str) -> bool:
        """Take a queued message for sending; False when another deliverer has it.

        Two deliverers in one service (a batch's worker, the rescan's mail
        worker) must never send the same message.
        """
        cursor = self.db.execute(
            "UPDATE messages SET state = ? WHERE id = ? AND state = ?",
            (MessageState.SENDING, message_id, MessageState.QUEUED),
        )
        return cursor.rowcount == 1

    def requeue_sending(self, tenant: str | None = None) -> int:
        """Queue again what a process that died was sending (all, or ``tenant``'s); how many.

        Only when nothing else sends them: at start with the state folder's
        lock held, or, with a shared database, as a tenant is taken over from
        an instance that stopped. The server may have accepted a message just
        before the death; it is sent again with the same Message-ID.
        """
        query = "UPDATE messages SET state = ? WHERE state = ?"
        args = [str(MessageState.QUEUED), str(MessageState.SENDING)]
        if tenant is not None:
            query += " AND tenant = ?"
            args.append(tenant)
        return self.db.execute(query, args).rowcount

    def counts_by_tenant(
        self, states: Sequence[MessageState], tenant: str | None = None
    ) -> dict[str, dict[str, int]]:
        """How many messages each tenant (or only ``tenant``) has in each of ``states``."""
        found: dict[str, dict[str, int]] = {}
        marks = ", ".join("?" * len(states))
        query = f"SELECT tenant, state, COUNT(*) FROM messages WHERE state IN ({marks})"  # noqa: S608
        args = [str(s) for s in states]
        if tenant is not None:
            query += " AND tenant = ?"
            args.append(tenant)
        for tenant_name, state, count in self.db.execute(query + " GROUP BY tenant, state", args):
            found.setdefault(tenant_name, {})[state] = count
        return found

    def oldest_waiting(self, tenant: str | None = None) -> dict[str, tuple[float, str | None]]:
        """When each tenant's (or only ``tenant``'s) oldest queued message was queued, and why.

        The reason is the last error of a queued message tried and deferred
        (None when none was tried yet).
        """
        query = "SELECT tenant, created_at, last_error FROM messages WHERE state = ?"
        args = [str(MessageState.QUEUED)]
        if tenant is not None:
            query += " AND tenant = ?"
            args.append(tenant)
        found: dict[str, tuple[float, str | None]] = {}
        for name, created, error in self.db.execute(query + " ORDER BY created_at", args):
            since, said = found.get(name, (created, None))
            found[name] = (since, error or said)
        return found

    def count(self, state: MessageState, tenant: str | None = None) -> int:
        """How many messages (of one tenant, or all) are in ``state``."""
        query, args = "SELECT COUNT(*) FROM messages WHERE state = ?", [str(state)]
        if tenant is not None:
            query += " AND tenant = ?"
            args.append(tenant)
        return int(self.db.execute(query, args).fetchone()[0])
