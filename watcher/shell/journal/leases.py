"""Which instance owns each tenant, when several instances share one journal.

An instance *owns* a tenant while its lease has not expired: only the owner
watches the tenant's folders, claims its files and runs its batches. The
owner renews its leases every few seconds; an instance that stops renewing
(killed, its host lost, cut off from the database) loses them after the lease
timeout, and another takes them over. Times are the database's clock, the
one every host shares. Taking a tenant is one statement that succeeds for
one instance only: the row lock of ``INSERT ... ON CONFLICT DO UPDATE ...
WHERE`` decides, as procrastinate and Oban do with their own tables.

Live instances say so in ``instances`` (``seen_at``), so each can take its
fair share of the tenants, not all of them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from watcher.shell.journal._database import Database

__all__ = ["Lease", "Leases"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """A tenant's owner: the instance, its host, since and until when (database time)."""

    tenant: str
    instance: str
    host: str | None
    since: float
    expires_at: float
    now: float

    @property
    def live(self) -> bool:
        """Whether the lease holds now."""
        return self.expires_at >= self.now


class Leases:
    """The tenants' leases in one journal."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.now_sql = db.dialect.now

    def now(self) -> float:
        """The database's clock."""
        return float(self.db.execute(f"SELECT {self.now_sql}").fetchone()[0])

    def join(self, instance: str, host: str, pid: int) -> None:
        """Say that ``instance`` is alive; a restart under its name starts with no tenant.

        The state folder's lock for the name makes sure the instance that held
        the name before is gone, so its leases are given up at once.
        """
        self.db.execute("DELETE FROM owners WHERE instance = ?", (instance,))
        self.db.execute(
            "INSERT INTO instances (id, host, pid, started_at, seen_at)"  # noqa: S608 - a constant
            f" VALUES (?, ?, ?, {self.now_sql}, {self.now_sql}) ON CONFLICT (id) DO UPDATE SET"
            " host = excluded.host, pid = excluded.pid, started_at = excluded.started_at,"
            " seen_at = excluded.seen_at",
            (instance, host, pid),
        )

    def renew(self, instance: str, timeout: float) -> set[str]:
        """Renew every lease ``instance`` holds; the tenants it still owns."""
        with self.db.transaction():
            self.db.execute(
                f"UPDATE instances SET seen_at = {self.now_sql} WHERE id = ?",  # noqa: S608
                (instance,),
            )
            rows = self.db.execute(
                f"UPDATE owners SET expires_at = {self.now_sql} + ?"  # noqa: S608 - a constant
                f" WHERE instance = ? AND expires_at >= {self.now_sql} RETURNING tenant",
                (timeout, instance),
            ).fetchall()
        return {tenant for (tenant,) in rows}

    def live_instances(self, timeout: float) -> int:
        """How many instances were seen within ``timeout``."""
        row = self.db.execute(
            f"SELECT COUNT(*) FROM instances WHERE seen_at >= {self.now_sql} - ?",  # noqa: S608
            (timeout,),
        ).fetchone()
        return int(row[0])

    def take(self, instance: str, tenants: Iterable[str], want: int, timeout: float) -> set[str]:
        """Take up to ``want`` of ``tenants`` that nobody owns now; the ones taken."""
        free = self._free(tenants)
        taken: set[str] = set()
        for tenant in free:
            if len(taken) >= want:
                break
            row = self.db.execute(
                "INSERT INTO owners (tenant, instance, since, expires_at)"  # noqa: S608 - constant
                f" VALUES (?, ?, {self.now_sql}, {self.now_sql} + ?)"
                " ON CONFLICT (tenant) DO UPDATE SET instance = excluded.instance,"
                " since = excluded.since, expires_at = excluded.expires_at"
                " WHERE owners.expires_at < excluded.since RETURNING tenant",
                (tenant, instance, timeout),
            ).fetchone()
            if row is not None:
                taken.add(tenant)
        return taken

    def _free(self, tenants: Iterable[str]) -> list[str]:
        """Those of ``tenants`` without a live lease."""
        held = {
            tenant
            for (tenant,) in self.db.execute(
                f"SELECT tenant FROM owners WHERE expires_at >= {self.now_sql}"  # noqa: S608
            )
        }
        return [t for t in tenants if t not in held]

    def release(self, instance: str, tenant: str) -> bool:
        """Give ``tenant`` up (it is idle here): another instance may take it at once."""
        cursor = self.db.execute(
            "DELETE FROM owners WHERE tenant = ? AND instance = ?", (tenant, instance)
        )
        return cursor.rowcount == 1

    def leave(self, instance: str) -> None:
        """A clean stop: every lease of ``instance`` given up, the instance gone."""
        with self.db.transaction():
            self.db.execute("DELETE FROM owners WHERE instance = ?", (instance,))
            self.db.execute("DELETE FROM instances WHERE id = ?", (instance,))

    def owners(self) -> dict[str, Lease]:
        """Every tenant's lease (expired ones too: ``live`` tells), with the owner's host."""
        rows = self.db.execute(
            "SELECT o.tenant, o.instance, i.host, o.since, o.expires_at,"  # noqa: S608 - constant
            f" {self.now_sql} FROM owners AS o LEFT JOIN instances AS i ON i.id = o.instance"
        ).fetchall()
        return {
            r[0]: Lease(
                tenant=r[0], instance=r[1], host=r[2], since=r[3], expires_at=r[4], now=r[5]
            )
            for r in rows
        }
