"""What the service's loop does for one tenant: its two lanes and the work they hand over.

A tenant has an **import lane** (its drop folder: ready files gather in the
batch window, and a closed window goes to the tenant's worker as a batch) and
a **check lane** (its ``check/`` folder: ready files go at once to a check,
never imported). Both are :class:`watcher.shell.intake.lane.TenantIntake`; this
module decides, each turn of the loop, what their ready files become, and
when a tenant's unfinished batches are tried again.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from watcher.core.refusals import interrupted
from watcher.core.signals import LaneKind
from watcher.core.states import Safeguard
from watcher.shell.accounts.checkfolder import ensure_check_folder
from watcher.shell.intake.lane import TenantIntake
from watcher.shell.mail import checkmail
from watcher.shell.pipeline.batches import run_tenant
from watcher.shell.pipeline.checking import check_files
from watcher.shell.pipeline.turns import here

if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

    from watcher.config import ServiceConfig, TenantConfig
    from watcher.core.ftpslog import Transfer
    from watcher.core.sftplog import Transaction
    from watcher.shell.journal import Journal
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.running.schemas import InForce, Schemas
    from watcher.shell.running.workers import Workers
    from watcher.shell.statedir import StateDir

__all__ = ["TenantLanes"]

_DECIDED = (Safeguard.APPROVED, Safeguard.DISCARDED)


class TenantLanes:
    """One tenant's lanes, and what their ready files become."""

    def __init__(
        self,
        config: TenantConfig,
        service: ServiceConfig,
        *,
        inbox: queue.Queue[object],
        log: FilteringBoundLogger,
        claimed: Callable[[str], set[tuple[str, int, int, int]]],
        stop: threading.Event,
        workers: Workers,
        schemas: Schemas,
        state: StateDir,
    ) -> None:
        self.config = config
        self.log = log
        self.workers = workers
        self.schemas = schemas
        self.interrupted_after = service.interrupted_after
        self.check_mail_every = service.check_mail_every
        self.state = state
        self.imports = TenantIntake(
            config, service, inbox=inbox, log=log, claimed=claimed, stop=stop
        )
        self.checks = TenantIntake(
            config, service, inbox=inbox, log=log, claimed=claimed, stop=stop, kind=LaneKind.CHECK
        )

    @property
    def name(self) -> str:
        """The tenant's name."""
        return self.config.name

    @property
    def lanes(self) -> tuple[TenantIntake, TenantIntake]:
        """Both lanes, the import lane first."""
        return self.imports, self.checks

    def start(self, now: float) -> None:
        """Watch both folders (making ``check/`` when missing) and scan them."""
        self.imports.start()
        if ensure_check_folder(self.config, self.log):
            self.checks.start()
        self._follow_log()
        for lane in self.lanes:
            lane.scan(now)

    def look(self, now: float) -> None:
        """Restart a dead observer (a missing check folder is made again).

        A drop folder removed, or closed to the service (``watcher tenant
        remove`` gives it to root), is said once and skipped until it is back.
        """
        self.imports.check(now)
        try:
            missing = not self.config.check_dir.is_dir()
        except OSError as exc:  # the drop folder itself cannot be searched
            self.imports.presence.lost(exc)
            return
        if not self.imports.folder_ok:
            return
        if ensure_check_folder(self.config, self.log):
            if missing:  # removed under the service: watch the one made anew
                self.checks.watch.stop()
            self.checks.check(now)
        self._follow_log()

    def _follow_log(self) -> None:
        """The check lane hears the import lane's SFTP log, for its own folder."""
        heard = self.imports.hearing.sftp_folder
        if heard is not None:
            self.checks.hearing.sftp_folder = heard / PurePosixPath("check")

    def heard(self, transaction: Transaction, now: float) -> None:
        """An SFTP transaction: each lane takes what concerns its folder; one audits it."""
        # Every lane of a tenant hears its servers' logs; the import lane audits them.
        self.imports.hearing.heard(transaction, now)
        self.checks.hearing.heard(transaction, now, audit=False)

    def heard_ftps(self, transfer: Transfer, now: float) -> None:
        """A line of vsftpd's log: each lane takes what concerns its folder; one audits it."""
        self.imports.hearing.heard_ftps(transfer, now)
        self.checks.hearing.heard_ftps(transfer, now, audit=False)

    def advance(self, now: float) -> bool:
        """Hand over what is ready: a closed window, uploads given up on, files to check.

        Returns whether anything moved (the status file is then rewritten).
        """
        moved = self._checks(now)
        intake = self.imports
        if strays := intake.strays.tell():
            self.workers.tell_strays(self.config, strays)
        moved = intake.gather(now) or moved
        busy = self.workers.busy(self.name)
        if not busy:
            gone = intake.interrupted(now)
            if gone:
                refusals = [interrupted(name, after=self.interrupted_after) for name in gone]
                self.workers.start(self.config, refusals=refusals)
                return True
        names = intake.take(now, busy=busy)
        if not names:
            return moved
        in_force = self._schema(intake, names, now)
        if in_force is not None:
            self.workers.start(self.config, names, in_force, waited=intake.waited(names, now))
        return True

    def _checks(self, now: float) -> bool:
        """Files finished in ``check/`` go to a check at once (no window), one check at a time."""
        lane = self.checks
        lane.gather(now)
        busy = self.workers.checking(self.name)
        names = lane.take(now, busy=busy)
        if not names:
            if not busy and checkmail.due(self.state, self.config, self.check_mail_every):
                self.workers.start_check(self.config, [], None)  # answers folded in: mail them
            return False
        in_force = self._schema(lane, names, now)
        if in_force is not None:
            self.workers.start_check(self.config, names, in_force)
        return True

    def _schema(self, lane: TenantIntake, names: list[str], now: float) -> InForce | None:
        """The schema in force, or None: then the files wait, shown as blocked."""
        in_force = self.schemas.current(self.name, self.config.schema)
        if in_force is None:
            self.log.error("batch.no_schema", tenant=self.name, files=len(names))
            lane.hold_back(names, now)
        else:
            lane.hold_back([], now)
        return in_force

    def rescan(self, journal: Journal, now: float) -> None:
        """Scan both folders for what events missed; resume unfinished batches when due."""
        self.imports.scan(now)
        if self.imports.folder_ok:  # the check folder is inside: one line says both are gone
            self.checks.scan(now)
        self.retry(journal, now)

    def retry(self, journal: Journal, now: float) -> None:
        """Resume the tenant's unfinished batches (rows pending) without waiting for an upload.

        A batch held for an operator stops the tenant until it is decided;
        once it is, its batches run at once, whatever the backoff says.
        """
        unfinished = journal.batches.unfinished(self.name)
        if not unfinished or unfinished[0].safeguard is Safeguard.HELD:
            return
        decided = any(b.safeguard in _DECIDED for b in unfinished)
        delay = self.workers.retry_due(self.name, now)
        if delay is None and not (decided and not self.workers.busy(self.name)):
            return
        self.log.info("batch.retrying", tenant=self.name, after=round(delay or 0))
        self.workers.start(self.config)

    def run_once(self, ctx: BatchContext, now: float) -> bool:
        """``watcher run --once``: check and import what is ready now; whether all completed."""
        for lane in self.lanes:
            lane.scan(now)
        names, checks = self.imports.ready(now), self.checks.ready(now)
        in_force = self.schemas.current(self.name, self.config.schema)
        if (names or checks) and in_force is None:
            self.log.error("batch.no_schema", tenant=self.name, files=len(names) + len(checks))
        check_files(ctx, self.config, checks, in_force)  # and the answers' mail, when due
        return all(r.complete for r in here(run_tenant(ctx, self.config, names, in_force)))

    def deadlines(self) -> list[float | None]:
        """When a lane's next file may be due, or its window closes."""
        return [d for lane in self.lanes for d in lane.deadlines()]

    def close(self) -> None:
        """Stop watching and listening."""
        for lane in self.lanes:
            lane.close()
