"""The tenants a service runs: every configured one's lanes, and which run here now.

Alone, an instance runs every tenant. Beside others on a shared database it
runs those it owns (:mod:`watcher.shell.running.ownership`): a tenant taken is put in
order (:func:`watcher.shell.pipeline.batches.take_over`) and started, its unfinished
batches resumed; an idle tenant above the share is stopped and given back,
its lanes made anew for the day it comes back.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from watcher.core.signals import Change, LaneKind
from watcher.shell.pipeline.batches import take_over
from watcher.shell.running.retention import prune
from watcher.shell.running.tenant import TenantLanes
from watcher.shell.web.status import live_tenant

if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Callable, Collection

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config, TenantConfig
    from watcher.core.documents import LiveTenant
    from watcher.core.ftpslog import Transfer
    from watcher.shell.intake.hearing import Logged
    from watcher.shell.intake.lane import TenantIntake
    from watcher.shell.journal import Journal
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.running.ownership import Ownership
    from watcher.shell.running.passes import Passes
    from watcher.shell.running.reload import Reloaded
    from watcher.shell.running.schemas import Schemas
    from watcher.shell.running.workers import Workers

__all__ = ["Roster"]


class Roster:
    """Every tenant's lanes, and the names of those running here."""

    def __init__(
        self,
        config: Config,
        *,
        inbox: queue.Queue[object],
        log: FilteringBoundLogger,
        claimed: Callable[[str], set[tuple[str, int, int, int]]],
        stop: threading.Event,
        workers: Workers,
        schemas: Schemas,
        passes: Passes,
    ) -> None:
        self.workers = workers
        self.passes = passes
        self.schemas = schemas
        self.log = log

        def make(tenant: TenantConfig) -> TenantLanes:
            return TenantLanes(
                tenant,
                config.service,
                inbox=inbox,
                log=log,
                claimed=claimed,
                stop=stop,
                workers=workers,
                schemas=schemas,
                state=workers.state,
            )

        self.make = make
        self.shared = config.service.database is not None
        self.tenants = {t.name: make(t) for t in config.tenants}
        self._mine: frozenset[str] = frozenset()
        # The running tenants' lanes, kept until the tenants running here change:
        # every folder event looks its lane up.
        self._running: list[TenantLanes] = []
        self._lanes: dict[tuple[str, LaneKind], TenantIntake] = {}

    @property
    def mine(self) -> frozenset[str]:
        """The names of the tenants running here."""
        return self._mine

    @mine.setter
    def mine(self, names: Collection[str]) -> None:
        self._mine = frozenset(names)
        self._running = [lanes for name, lanes in self.tenants.items() if name in self._mine]
        self._lanes = {(t.name, lane.kind): lane for t in self._running for lane in t.lanes}

    def mail(self) -> frozenset[str] | None:
        """Whose waiting mail this instance sends: all of it, or (shared) its tenants'."""
        return self.mine if self.shared else None

    def running(self) -> list[TenantLanes]:
        """The lanes of the tenants running here, in the configuration's order."""
        return self._running

    def lanes(self) -> dict[tuple[str, LaneKind], TenantIntake]:
        """Each lane of the tenants running here, by tenant and kind (as its events carry)."""
        return self._lanes

    def begin(self, journal: Journal, tenant: TenantLanes, now: float) -> None:
        """Watch a tenant's folders, load its schema, resume its unfinished batches."""
        tenant.start(now)
        self.schemas.refresh(tenant.name, tenant.config.schema)
        if journal.batches.unfinished(tenant.name):
            self.workers.start(tenant.config)

    def begin_all(self, journal: Journal, now: float) -> None:
        """Begin every tenant running here (:meth:`begin`), each on its own."""
        for tenant in self.running():
            self.passes.run(
                "start", tenant.name, functools.partial(self.begin, journal, tenant, now), now
            )

    def look(self, now: float) -> None:
        """Each running tenant's look at its folders, and its schema file's stat."""
        for tenant in self.running():
            self.passes.run("look", tenant.name, functools.partial(tenant.look, now), now)
            # A stat per schema file: an edit is in force within seconds.
            refresh = functools.partial(self.schemas.refresh, tenant.name, tenant.config.schema)
            self.passes.run("schema", tenant.name, refresh, now)

    def rescan(self, journal: Journal, now: float) -> None:
        """Each running tenant's rescan, and its unfinished batches resumed when due."""
        for tenant in self.running():
            self.passes.run(
                "rescan", tenant.name, functools.partial(tenant.rescan, journal, now), now
            )

    def prune(self, ctx: BatchContext, wall: float, now: float) -> None:
        """Apply each running tenant's retention (``wall``: the wall clock's time)."""
        for tenant in self.running():
            self.passes.run(
                "retention", tenant.name, functools.partial(prune, ctx, tenant.config, wall), now
            )

    def advance(self, now: float) -> bool:
        """Each running tenant's ready files handed over; whether anything moved."""
        moved = [
            self.passes.run("advance", t.name, functools.partial(t.advance, now), now) is True
            for t in self.running()
        ]
        return any(moved)

    def owned(self, ctx: BatchContext, owned: frozenset[str], now: float) -> None:
        """Tenants taken (from a stopped instance, or given back by a busy one): run them here."""
        for name in sorted(owned - self.mine):
            if name not in self.tenants:
                continue
            take_over(ctx, name)
            self.mine = self.mine | {name}
            self.begin(ctx.journal, self.tenants[name], now)
            self.log.info("tenant.taken_over", tenant=name, instance=ctx.state.instance)

    def retenant(self, change: Reloaded, journal: Journal, now: float) -> None:
        """Apply tenants loaded again: lanes for new and changed ones, none for removed ones.

        A removed or changed tenant's lanes stop watching; a batch it runs
        finishes with the configuration it started with. With a shared
        database a new tenant runs once this instance takes its lease.
        """
        for name in (*change.changed, *change.removed):
            self.tenants.pop(name).close()
        made = {n: self.make(change.config.tenant(n)) for n in (*change.added, *change.changed)}
        kept = self.tenants
        self.tenants = {t.name: kept.get(t.name) or made[t.name] for t in change.config.tenants}
        starting = set(change.changed) & self.mine
        if not self.shared:
            starting |= set(change.added)
        self.mine = (self.mine - set(change.removed)) | starting
        for name in sorted(starting):
            self.passes.run(
                "start", name, functools.partial(self.begin, journal, self.tenants[name], now), now
            )
        for name in change.added:
            self.log.info("tenant.added", tenant=name)
        for name in change.changed:
            self.log.info("tenant.changed", tenant=name)
        for name in change.removed:
            self.log.info("tenant.removed", tenant=name)

    def even_out(self, journal: Journal, ownership: Ownership, now: float) -> None:
        """Give back idle tenants above this instance's share, so another instance runs them."""
        for _ in range(ownership.excess()):
            idle = next((t for t in self.running() if self._idle(journal, t, now)), None)
            if idle is None:
                return
            idle.close()
            self.tenants[idle.name] = self.make(idle.config)
            self.mine = self.mine - {idle.name}
            ownership.release(idle.name)

    def _idle(self, journal: Journal, tenant: TenantLanes, now: float) -> bool:
        """Nothing of the tenant's in hand: no worker, no file tracked or waiting, no batch."""
        return (
            not self.workers.busy(tenant.name)
            and not self.workers.checking(tenant.name)
            and not any(
                s.uploads or s.waiting for s in (lane.snapshot(now) for lane in tenant.lanes)
            )
            and not journal.batches.unfinished(tenant.name)
        )

    def run_once(self, ctx: BatchContext, clock: Callable[[], float]) -> bool:
        """``watcher run --once``: every tenant running here; whether all completed."""
        # Every tenant runs, whether an earlier one completed or not (or raised).
        completed = [
            self.passes.run("once", t.name, functools.partial(t.run_once, ctx, clock()), clock())
            is True
            for t in self.running()
        ]
        others = sorted(set(self.tenants) - self.mine)
        if others:
            self.log.warning("tenant.owned_elsewhere", tenants=others)
        return all(completed)

    def take(self, message: Change | Logged, now: float) -> None:
        """A folder event or an SFTP transaction, to its tenant when that runs here."""
        if isinstance(message, Change):
            lane = self.lanes().get((message.tenant, message.lane))
            if lane is not None:  # a tenant given back: its new owner scans
                lane.changed(message, now)
        elif message.tenant in self.mine:
            self.tenants[message.tenant].heard(message.transaction, now)

    def heard_ftps(self, tenant: str, transfer: Transfer, now: float) -> None:
        """A line of vsftpd's log, to its tenant when that runs here."""
        if tenant in self.mine:
            self.tenants[tenant].heard_ftps(transfer, now)

    def deadlines(self) -> list[float | None]:
        """When a running tenant's next file may be due, or its window closes."""
        return [d for tenant in self.running() for d in tenant.deadlines()]

    def files(self, now: float) -> tuple[int, int]:
        """Files tracked, and files waiting in a window, of the tenants running here."""
        snapshots = [lane.snapshot(now) for lane in self.lanes().values()]
        return sum(len(s.uploads) for s in snapshots), sum(len(s.waiting) for s in snapshots)

    def live(self, now: float) -> dict[str, LiveTenant]:
        """What each tenant running here is waiting for, for the status file."""
        pushes = self.workers.runtime.engine.pushes()
        return {
            tenant.name: live_tenant(
                [lane.snapshot(now) for lane in tenant.lanes],
                now,
                in_force=self.schemas.current(tenant.name, tenant.config.schema),
                refused=self.schemas.refused(tenant.name),
                running=self.workers.busy(tenant.name),
                importing=pushes.get(tenant.name),
            )
            for tenant in self.running()
        }

    def watched(self) -> dict[str, bool]:
        """Whether each running tenant's drop folder is there and watched."""
        return {t.name: t.imports.watching() for t in self.running()}

    def close(self) -> None:
        """Stop watching and listening for every tenant running here."""
        for tenant in self.running():
            tenant.close()
