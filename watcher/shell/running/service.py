"""The long-running service: one loop that watches every drop folder and starts batches.

The loop owns every decision and sleeps on a queue until something happens
or a deadline comes: watchdog events (:class:`watcher.core.signals.Change`)
and SFTP log transactions (:class:`watcher.shell.intake.lane.Logged`) arrive on the
queue, and so does a worker's :class:`watcher.shell.running.workers.Done`; deadlines
are a file's settle time, a batch window, the periodic rescan, the status
file and the heartbeat. Each tenant's intake (:mod:`watcher.shell.intake.lane`)
says which files are ready; the loop gathers them into the tenant's batch
window and hands a closed window to the tenant's worker
(:mod:`watcher.shell.running.workers`). The loop never trusts events alone: a scan at
start finds files that arrived while the service was down, periodic rescans
find what events missed, and a dead observer is restarted and followed by a
scan.

One instance per state folder: its lock refuses a second. With a shared
database (PostgreSQL) several instances share the tenants: each runs only
the tenants it owns (:mod:`watcher.shell.running.ownership`), takes over those of an
instance that stopped, and gives idle ones back to even the load. SIGTERM and SIGINT
(or :meth:`Service.request_stop`) stop the service cleanly: no new batch
starts, a running import stops after the rows in flight (the rest stay
pending for the next start), and the process exits 0.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, cast

from watcher.config import exposed_secrets
from watcher.core.signals import Change
from watcher.core.states import MessageState
from watcher.errors import DatabaseUnavailableError
from watcher.shell import logs
from watcher.shell.intake.ftpslog import open_ftps_log
from watcher.shell.intake.hearing import Logged
from watcher.shell.mail import mailer
from watcher.shell.running.notify import Notifier
from watcher.shell.running.ownership import Owned
from watcher.shell.running.passes import Passes
from watcher.shell.running.reload import Reload, Watched, reload
from watcher.shell.running.roster import Roster
from watcher.shell.running.runtime import Runtime
from watcher.shell.running.schemas import Schemas
from watcher.shell.running.stopping import stop_on_signals
from watcher.shell.running.workers import Done, Workers
from watcher.shell.web.listener import open_listener
from watcher.shell.web.metrics import Metrics, Waiting, read_waiting
from watcher.shell.web.status import StatusFile

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config
    from watcher.shell.journal import Journal
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.web.listener import Listener

__all__ = ["Service"]

_LIVENESS_EVERY = 5.0
_PRUNE_EVERY = 3600.0
_LONGEST_SLEEP = 5.0
_FTPS_LOG_EVERY = 0.5  # vsftpd's log is read this often (and before every decision)


class Service:
    """The service for every tenant of a configuration."""

    def __init__(
        self,
        config: Config,
        *,
        log: FilteringBoundLogger | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.log = log or logs.get_logger()
        self.clock = clock
        self.wall_clock = wall_clock  # retention dates archives by it, not the monotonic one
        self.stop = stop or threading.Event()
        self.inbox: queue.Queue[object] = queue.Queue()
        self.passes = Passes(self.log)  # every periodic pass: none can end the process
        self.journal: Journal | None = None
        self._due: dict[str, float] = {}  # when each periodic pass is next due
        names = [t.name for t in config.tenants]
        listen = config.service.http_listen
        self.metrics = Metrics(names, self._waiting, wall_clock) if listen else None
        # The edges every batch runner shares, and the only maker of their contexts.
        self.runtime = Runtime(
            config=config, log=self.log, stop=self.stop, clock=wall_clock, metrics=self.metrics
        )
        self.state = self.runtime.state
        self.schemas = Schemas(self.log, keep=self.state.schemas)
        self.workers = Workers(self.runtime, inbox=self.inbox)
        # Every tenant's lanes; those running here: all of them, or this instance's share.
        self.roster = Roster(
            config, inbox=self.inbox, log=self.log, claimed=self._claimed, stop=self.stop,
            workers=self.workers, schemas=self.schemas, passes=self.passes,
        )  # fmt: skip
        self.ownership = self.runtime.ownership(names, self.inbox)
        self.ftps = open_ftps_log(config, self.state, self.log, timer=clock)
        self.notifier = Notifier()
        self.status = StatusFile(self.state, self.log, clock=wall_clock)
        self.watched, self.listener = Watched(config), cast("Listener | None", None)
        self._outbox_seen = 0

    def request_stop(self) -> None:
        """Ask the service to stop: no new batch starts, and :meth:`run` returns soon."""
        self.stop.set()
        self.inbox.put(None)

    def handle_signals(self) -> None:
        """Make SIGTERM and SIGINT ask the service to stop (from the main thread, once)."""
        stop_on_signals(self.request_stop, self.log, reload=lambda: self.inbox.put(Reload()))

    def run(self, *, once: bool = False) -> int:
        """Serve until asked to stop (or, with ``once``, until what is ready is done)."""
        with self.opened(once=once) as journal:
            self.listener = open_listener(self.config, self.state, self.metrics, log=self.log)
            try:
                return self._once(journal) if once else self._serve(journal)
            finally:
                if self.listener is not None:
                    self.listener.close()

    @contextlib.contextmanager
    def opened(self, *, once: bool = False) -> Iterator[Journal]:
        """The service holding its state folder, tenants and journal; every worker ended after."""
        with self.runtime.hold(self.ownership, take_all=once) as held:
            self.journal = held.journal
            self.roster.mine = set(held.owned)
            self.log.info(
                "service.started",
                tenants=len(self.roster.tenants),
                owned=len(held.owned),
                instance=self.state.instance,
                once=once,
                pid=os.getpid(),
                batch_window=self.config.service.batch_window,
                settle_time=self.config.service.settle_time,
            )
            for key, found in exposed_secrets(self.config):
                self.log.warning("secret.exposed", key=key, detail=found)
            try:
                yield held.journal
            finally:
                self._shutdown()

    def _context(self, journal: Journal) -> BatchContext:
        return self.runtime.context(journal)

    def _waiting(self) -> Waiting:
        """What waits now, for the metrics: from the journal and the lanes."""
        return read_waiting(self.state, self.roster.watched())

    def _claimed(self, tenant: str) -> set[tuple[str, int, int, int]]:
        assert self.journal is not None  # noqa: S101 - set by run
        return self.journal.files.claimed_entries(tenant)

    def _serve(self, journal: Journal) -> int:
        self.begin(journal)
        self.notifier.ready(f"watching {len(self.roster.tenants)} drop folders")
        while not self.stop.is_set():
            self._wait(min(*self._due.values(), *self._deadlines()))  # a message may need it too
            self.step(journal)
        return 0

    def begin(self, journal: Journal) -> None:
        """Start every tenant running here; the passes fall due from now."""
        now = self.clock()
        self.roster.begin_all(journal, now)
        self._due = {
            "prune": now,  # retention: at start, then once an hour
            "rescan": now + self.config.service.rescan_interval,
            "liveness": now + _LIVENESS_EVERY,
            "heartbeat": now,
        }

    def step(self, journal: Journal) -> None:
        """What the loop does after each wait: every message waiting, one turn, the status."""
        self._drain()
        now = self.clock()
        try:
            self._turn(journal, now, self._due)
        except DatabaseUnavailableError as exc:
            # The shared database restarts or is cut off: what needed it is done
            # again on a later turn; the lease thread decides when to give up.
            self.log.warning("database.unavailable", error=str(exc))
            self.stop.wait(1.0)
        status = self.passes.run("status", None, functools.partial(self._write_status, now), now)
        self.notifier.ping(now, healthy=status is True)

    def _turn(self, journal: Journal, now: float, due: dict[str, float]) -> None:
        """One turn of the loop: what is due, then every ready file handed over.

        Each pass runs through :attr:`passes`, per tenant where it is a
        tenant's: what one raises is logged and backed off, never the end.
        """
        run, roster = self.passes.run, self.roster
        if now >= due["liveness"]:
            due["liveness"] = now + _LIVENESS_EVERY
            # A change of owners missed (the database was away) is caught up.
            ctx = self._context(journal)
            run("owners", None, lambda: roster.owned(ctx, self.ownership.owned, now), now)
            run("even_out", None, lambda: roster.even_out(journal, self.ownership, now), now)
            roster.look(now)
        if now >= due["rescan"]:
            due["rescan"] = now + self.config.service.rescan_interval
            run("config", None, lambda: reload(self, journal, now), now)  # tenants added...
            roster.rescan(journal, now)
            run("mail", None, lambda: self.workers.deliver_mail(journal, roster.mail()), now)
        if now >= due["prune"]:
            due["prune"] = now + _PRUNE_EVERY
            roster.prune(self._context(journal), self.wall_clock(), now)
        run("ftps", None, lambda: self._hear_ftps(now), now)  # a failed upload is heard first
        if roster.advance(now):
            self.status.dirty = True
        if now >= due["heartbeat"]:
            due["heartbeat"] = now + self.config.service.heartbeat_interval
            run("heartbeat", None, lambda: self._heartbeat(journal, now), now)

    def _once(self, journal: Journal) -> int:
        """Process what is ready now: every stable file not being written, checks too."""
        for lane in self.roster.lanes().values():
            lane.scan(self.clock())
        time.sleep(self.config.service.settle_time)
        self._hear_ftps(self.clock())
        ctx = self._context(journal)
        completed = self.roster.run_once(ctx, self.clock)
        mailer.deliver(self.config, journal, self.state, self.log, self.roster.mail())
        return 0 if completed else 3

    def _wait(self, until: float) -> None:
        """Sleep until ``until`` or the next message, then take every message."""
        timeout = min(max(until - self.clock(), 0.0), _LONGEST_SLEEP)
        try:
            message = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return
        self._take(message)
        self._drain()

    def _drain(self) -> None:
        """Take every message waiting, without waiting for one."""
        while True:
            try:
                self._take(self.inbox.get_nowait())
            except queue.Empty:
                return

    def _hear_ftps(self, now: float) -> None:
        """Every new line of vsftpd's log, to the tenant whose account wrote it."""
        if self.ftps is not None:
            self.ftps.read(lambda tenant, transfer: self.roster.heard_ftps(tenant, transfer, now))

    def _deadlines(self) -> list[float]:
        found = [self.status.deadline(), self.notifier.next_ping()]
        if self.ftps is not None:
            found.append(self.clock() + _FTPS_LOG_EVERY)
        found += self.roster.deadlines()
        return [deadline for deadline in found if deadline is not None]

    def _take(self, message: object) -> None:
        now = self.clock()
        self.status.dirty = True
        if isinstance(message, (Change, Logged)):
            self.passes.run(
                "events", message.tenant, functools.partial(self.roster.take, message, now), now
            )
        elif isinstance(message, Reload) and self.journal is not None:  # SIGHUP
            reload(self, self.journal, now, force=True)
        elif isinstance(message, Done):
            self.workers.finished(message, now)
        elif isinstance(message, Owned) and self.journal is not None:
            ctx = self._context(self.journal)
            self.passes.run(
                "owners", None, lambda: self.roster.owned(ctx, message.tenants, now), now
            )

    def _heartbeat(self, journal: Journal, now: float) -> None:
        if self.metrics is not None:
            self.metrics.beat()
        queued = journal.messages.count(MessageState.QUEUED)
        if queued > self._outbox_seen:  # more waiting than at the last heartbeat
            self.log.warning("mail.outbox_growing", queued=queued, before=self._outbox_seen)
        self._outbox_seen = queued
        tracked, waiting = self.roster.files(now)
        self.log.info(
            "service.heartbeat",
            tenants=len(self.roster.tenants),
            files_tracked=tracked,
            files_waiting=waiting,
            batches_running=self.workers.running(),
            batches_done=self.workers.done,
            outbox=queued,
        )

    def _write_status(self, now: float) -> bool:
        """Write what each tenant is waiting for, when due; whether the state folder takes it."""
        if not self.status.due(now):
            return self.status.healthy()
        return self.status.write(self.roster.live(now), now, refused=self.watched.refused)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.stop.set()
        if self.ftps is not None:
            self.ftps.close()
        self.roster.close()
        self.workers.join()
        with contextlib.suppress(Exception):
            self.log.info("service.stopped", batches_done=self.workers.done)
