"""The long-running service: one loop that watches every drop folder and starts batches.

The loop owns every decision and sleeps on a queue until something happens
or a deadline comes: watchdog events (:class:`watcher.core.signals.Change`)
and SFTP log transactions (:class:`watcher.shell.intake.Logged`) arrive on the
queue, and so does a worker's :class:`watcher.shell.workers.Done`; deadlines
are a file's settle time, a batch window, the periodic rescan, the status
file and the heartbeat. Each tenant's intake (:mod:`watcher.shell.intake`)
says which files are ready; the loop gathers them into the tenant's batch
window and hands a closed window to the tenant's worker
(:mod:`watcher.shell.workers`). The loop never trusts events alone: a scan at
start finds files that arrived while the service was down, periodic rescans
find what events missed, and a dead observer is restarted and followed by a
scan.

One instance per state folder: its lock refuses a second. SIGTERM and SIGINT
(or :meth:`Service.request_stop`) stop the service cleanly: no new batch
starts, a running import stops after the rows in flight (the rest stay
pending for the next start), and the process exits 0.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from typing import TYPE_CHECKING

from watcher.config import exposed_secrets
from watcher.core.refusals import interrupted
from watcher.core.signals import Change
from watcher.core.states import MessageState, Safeguard
from watcher.shell import logs, mailer
from watcher.shell.batches import BatchResult, run_tenant, start_up
from watcher.shell.context import BatchContext
from watcher.shell.intake import Logged, TenantIntake
from watcher.shell.journal import Journal
from watcher.shell.notify import Notifier
from watcher.shell.schemas import Schemas
from watcher.shell.statedir import StateDir
from watcher.shell.status import StatusFile, live_tenant
from watcher.shell.workers import Done, Workers

if TYPE_CHECKING:
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config

__all__ = ["Service"]

_DECIDED = (Safeguard.APPROVED, Safeguard.DISCARDED)
_LIVENESS_EVERY = 5.0
_LONGEST_SLEEP = 5.0


class Service:
    """The service for every tenant of a configuration."""

    def __init__(
        self,
        config: Config,
        *,
        log: FilteringBoundLogger | None = None,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.log = log or logs.get_logger()
        self.clock = clock
        self.stop = stop or threading.Event()
        self.state = StateDir(config.service.state_dir)
        self.inbox: queue.Queue[object] = queue.Queue()
        self.schemas = Schemas(self.log, keep=self.state.schemas)
        self.journal: Journal | None = None
        self.tenants = {
            t.name: TenantIntake(
                t,
                config.service,
                inbox=self.inbox,
                log=self.log,
                claimed=self._claimed,
                stop=self.stop,
            )
            for t in config.tenants
        }
        self.workers = Workers(config, self.state, inbox=self.inbox, log=self.log, stop=self.stop)
        self.notifier = Notifier()
        self.status = StatusFile(self.state, self.log)
        self._outbox_seen = 0

    def request_stop(self) -> None:
        """Ask the service to stop: no new batch starts, and :meth:`run` returns soon."""
        self.stop.set()
        self.inbox.put(None)

    def handle_signals(self) -> None:
        """Make SIGTERM and SIGINT ask the service to stop."""

        def ask(number: int, _: object) -> None:
            self.log.info("service.stopping", signal=signal.Signals(number).name)
            self.request_stop()

        signal.signal(signal.SIGTERM, ask)
        signal.signal(signal.SIGINT, ask)

    def run(self, *, once: bool = False) -> int:
        """Serve until asked to stop (or, with ``once``, until what is ready is done)."""
        lock = self.state.lock()
        self.journal = Journal(self.state.journal)
        try:
            start_up(self._context(self.journal))
            self.log.info(
                "service.started",
                tenants=len(self.tenants),
                once=once,
                pid=os.getpid(),
                batch_window=self.config.service.batch_window,
                settle_time=self.config.service.settle_time,
            )
            for key, found in exposed_secrets(self.config):
                self.log.warning("secret.exposed", key=key, detail=found)
            return self._once(self.journal) if once else self._serve(self.journal)
        finally:
            self._shutdown()
            self.journal.close()
            lock.release()

    def _context(self, journal: Journal) -> BatchContext:
        return BatchContext(
            config=self.config, journal=journal, state=self.state, log=self.log, stop=self.stop
        )

    def _claimed(self, tenant: str) -> set[tuple[str, int, int, int]]:
        assert self.journal is not None  # noqa: S101 - set by run
        return self.journal.files.claimed_entries(tenant)

    def _serve(self, journal: Journal) -> int:
        now = self.clock()
        for intake in self.tenants.values():
            intake.start()
            intake.scan(now)
            self.schemas.refresh(intake.name, intake.config.schema)
            if journal.batches.unfinished(intake.name):
                self.workers.start(intake.config)
        next_rescan = now + self.config.service.rescan_interval
        next_liveness = now + _LIVENESS_EVERY
        next_heartbeat = now
        self.notifier.ready(f"watching {len(self.tenants)} drop folders")
        while not self.stop.is_set():
            self._wait(min(next_rescan, next_liveness, next_heartbeat, *self._deadlines()))
            now = self.clock()
            if now >= next_liveness:
                next_liveness = now + _LIVENESS_EVERY
                for intake in self.tenants.values():
                    intake.check(now)
                    # A stat per schema file: an edit is in force within seconds.
                    self.schemas.refresh(intake.name, intake.config.schema)
            if now >= next_rescan:
                next_rescan = now + self.config.service.rescan_interval
                for intake in self.tenants.values():
                    intake.scan(now)
                    self._retry_unfinished(journal, intake, now)
                self.workers.deliver_mail(journal)
            for intake in self.tenants.values():
                self._advance(intake, now)
            if now >= next_heartbeat:
                next_heartbeat = now + self.config.service.heartbeat_interval
                self._heartbeat(journal, now)
            self.notifier.ping(now, healthy=self._write_status(now))
        return 0

    def _once(self, journal: Journal) -> int:
        """Process what is ready now: every stable file not being written."""
        now = self.clock()
        for intake in self.tenants.values():
            intake.scan(now)
        time.sleep(self.config.service.settle_time)
        ctx = self._context(journal)
        results: list[BatchResult] = []
        now = self.clock()
        for intake in self.tenants.values():
            intake.scan(now)
            names = intake.ready(now)
            in_force = self.schemas.current(intake.name, intake.config.schema) if names else None
            if names and in_force is None:
                self.log.error("batch.no_schema", tenant=intake.name, files=len(names))
            results.extend(run_tenant(ctx, intake.config, names, in_force))
        mailer.deliver(self.config, journal, self.state, self.log)
        return 0 if all(r.complete for r in results) else 3

    def _wait(self, until: float) -> None:
        """Sleep until ``until`` or the next message, then take every message."""
        timeout = min(max(until - self.clock(), 0.0), _LONGEST_SLEEP)
        try:
            message = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return
        self._take(message)
        while True:
            try:
                self._take(self.inbox.get_nowait())
            except queue.Empty:
                return

    def _deadlines(self) -> list[float]:
        found = [self.status.deadline(), self.notifier.next_ping()]
        for intake in self.tenants.values():
            found += [intake.tracker.next_deadline(), intake.batcher.deadline()]
        return [deadline for deadline in found if deadline is not None]

    def _take(self, message: object) -> None:
        now = self.clock()
        self.status.dirty = True
        if isinstance(message, Change):
            self.tenants[message.tenant].changed(message, now)
        elif isinstance(message, Logged):
            self.tenants[message.tenant].heard(message.transaction, now)
        elif isinstance(message, Done):
            self.workers.finished(message, now)

    def _advance(self, intake: TenantIntake, now: float) -> None:
        """Gather the tenant's ready files; hand over a closed window, or uploads given up on."""
        for name in intake.ready(now):
            intake.batcher.add(name, now)
            self.status.dirty = True
        busy = self.workers.busy(intake.name)
        gone = intake.tracker.interrupted(now)
        if gone and not busy:
            for name in gone:
                intake.tracker.forget(name)
            after = self.config.service.interrupted_after
            self.workers.start(
                intake.config, refusals=[interrupted(name, after=after) for name in gone]
            )
            return
        names = intake.batcher.take(now, busy=busy)
        if not names:
            return
        self.status.dirty = True
        in_force = self.schemas.current(intake.name, intake.config.schema)
        if in_force is None:
            self.log.error("batch.no_schema", tenant=intake.name, files=len(names))
            intake.blocked = set(names)
            for name in names:
                intake.tracker.note(name, "scan", self.clock())
            return
        intake.blocked = set()
        self.workers.start(intake.config, names, in_force)

    def _retry_unfinished(self, journal: Journal, intake: TenantIntake, now: float) -> None:
        """Resume a tenant's unfinished batches (rows pending) without waiting for an upload.

        A batch held for an operator stops the tenant until it is decided;
        once it is, its batches run at once, whatever the backoff says.
        """
        unfinished = journal.batches.unfinished(intake.name)
        if not unfinished or unfinished[0].safeguard is Safeguard.HELD:
            return
        decided = any(b.safeguard in _DECIDED for b in unfinished)
        delay = self.workers.retry_due(intake.name, now)
        if delay is None and not (decided and not self.workers.busy(intake.name)):
            return
        self.log.info("batch.retrying", tenant=intake.name, after=round(delay or 0))
        self.workers.start(intake.config)

    def _heartbeat(self, journal: Journal, now: float) -> None:
        queued = journal.messages.count(MessageState.QUEUED)
        if queued > self._outbox_seen:  # more waiting than at the last heartbeat
            self.log.warning("mail.outbox_growing", queued=queued, before=self._outbox_seen)
        self._outbox_seen = queued
        self.log.info(
            "service.heartbeat",
            tenants=len(self.tenants),
            files_tracked=sum(len(t.tracker.states(now)) for t in self.tenants.values()),
            files_waiting=sum(len(t.batcher.waiting) for t in self.tenants.values()),
            batches_running=self.workers.running(),
            batches_done=self.workers.done,
            outbox=queued,
        )

    def _write_status(self, now: float) -> bool:
        """Write what each tenant is waiting for, when due; whether the state folder takes it."""
        if not self.status.due(now):
            return self.status.healthy()
        tenants = {
            name: live_tenant(
                intake,
                now,
                in_force=self.schemas.current(name, intake.config.schema),
                refused=self.schemas.refused(name),
                running=self.workers.busy(name),
            )
            for name, intake in self.tenants.items()
        }
        return self.status.write(tenants, now)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.stop.set()
        for intake in self.tenants.values():
            intake.close()
        self.workers.join()
        with contextlib.suppress(Exception):
            self.log.info("service.stopped", batches_done=self.workers.done)
