"""The long-running service: watch every drop folder, batch, process, repeat.

One supervisor loop owns all decisions. It sleeps on a queue until something
happens or a deadline comes: watchdog events and SFTP log transactions arrive
on the queue; deadlines are a file's settle time, a batch window, the
periodic rescan, the heartbeat. Each tenant runs its batches in a worker
thread of its own, one batch at a time, so one tenant's slow API or huge file
never delays another. The loop never trusts events alone: a scan at start
finds files that arrived while the service was down, periodic rescans find
what events missed, and a dead observer is restarted and followed by a scan.

One instance per state folder: a lock file refuses a second. SIGTERM and
SIGINT stop the service cleanly: no new batch starts, a running import stops
after the rows in flight (the rest stay pending for the next start), and the
process exits 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import queue
import signal
import stat
import threading
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from watcher.config import exposed_secrets
from watcher.core.batching import Batcher
from watcher.core.codes import Code
from watcher.core.names import shown
from watcher.core.readiness import Tracker, is_temporary
from watcher.core.sftplog import Transaction, name_in, parse, trusted
from watcher.errors import AlreadyRunningError, StateError
from watcher.shell import logs
from watcher.shell.dropfolder import DropFolder, Identity, Refused
from watcher.shell.journal import Journal
from watcher.shell.logsocket import LogSocket
from watcher.shell.notify import Notifier
from watcher.shell.pipeline import BatchResult, Pipeline
from watcher.shell.schemas import Schemas
from watcher.shell.watching import Change, Watch

if TYPE_CHECKING:
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config, TenantConfig
    from watcher.shell.schemas import InForce

_LIVENESS_EVERY = 5.0
_LONGEST_SLEEP = 5.0
_LONGEST_RETRY_DELAY = 3600.0
_LONGEST_STATUS_BACKOFF = 30.0


class StateLock:
    """An exclusive lock on a state folder, held for the process's life.

    The lock is taken on the folder itself, not on a file in it: a lock file
    can be deleted while the service runs, and a second instance would then
    lock a new one and share the journal. ``watcher.lock`` only tells people
    which process holds the lock.
    """

    def __init__(self, state_dir: Path) -> None:
        """Take the lock.

        Raises:
            AlreadyRunningError: another process holds it.
            StateError: the folder cannot be made, opened or written.
        """
        self.path = state_dir / "watcher.lock"
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StateError(
                f"the state folder {state_dir} cannot be used ({exc.strerror}): create it "
                "writable by the service's user (systemd's StateDirectory= does)"
            ) from exc
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self.fd)
            try:
                holder = self.path.read_text(errors="replace").strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise AlreadyRunningError(
                f"another watcher is running on {state_dir} (pid {holder})"
            ) from exc
        temporary = self.path.with_name(f".watcher.lock.{os.getpid()}")
        try:
            temporary.write_text(f"{os.getpid()}\n")
            temporary.replace(self.path)
        except OSError as exc:
            self.release()
            temporary.unlink(missing_ok=True)
            raise StateError(
                f"the state folder {state_dir} cannot be written ({exc.strerror}): make it "
                "writable by the service's user and free space on its disk"
            ) from exc

    def release(self) -> None:
        """Release the lock."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Heard:
    tenant: str
    transaction: Transaction


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Done:
    tenant: str
    complete: bool


class _Tenant:
    """What the service keeps for one tenant."""

    def __init__(self, config: TenantConfig, service: Service) -> None:
        self.config = config
        self.tracker = Tracker(
            settle=service.config.service.settle_time,
            interrupted_after=service.config.service.interrupted_after,
        )
        self.batcher = Batcher(service.config.service.batch_window)
        self.watch = Watch(
            config.name, config.drop_dir, service.config.service.observer, service.inbox
        )
        self.socket: LogSocket | None = None
        self.worker: threading.Thread | None = None
        self.writers: dict[str, int] = {}
        self.leftovers: dict[str, tuple[Identity, float]] = {}
        self.reported: set[tuple[str, Identity]] = set()
        self.folder_ok = True
        self.lease_warned = False
        # Unfinished batches are resumed at rescans, less often while they keep failing.
        self.retry_delay = service.config.service.rescan_interval
        self.retry_at = 0.0
        self.sftp_folder: PurePosixPath | None = None
        # Files ready but held because no schema is in force.
        self.blocked: set[str] = set()

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.is_alive()


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
        self.inbox: queue.Queue[object] = queue.Queue()
        self.schemas = Schemas(self.log, keep=config.service.state_dir / "schemas")
        self.tenants = {t.name: _Tenant(t, self) for t in config.tenants}
        self.journal: Journal | None = None
        self.mail_worker: threading.Thread | None = None
        self.batches_done = 0
        self.notifier = Notifier()
        self.status_path = config.service.state_dir / "status.json"
        self._status_written = float("-inf")
        self._status_dirty = True
        # Seconds between tries at the status file while it cannot be written; 0 while it can.
        self._status_backoff = 0.0
        self._status_retry_at = float("-inf")
        self._outbox_seen = 0
        self._listeners: list[threading.Thread] = []

    # Running.

    def run(self, *, once: bool = False) -> int:
        """Serve until asked to stop (or, with ``once``, until what is ready is done)."""
        lock = StateLock(self.config.service.state_dir)
        self.journal = Journal(self.config.service.state_dir / "journal.sqlite")
        try:
            Pipeline(self.config, self.journal, log=self.log).start_up()
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
            return self._once() if once else self._serve()
        finally:
            self._shutdown()
            self.journal.close()
            lock.release()

    def handle_signals(self) -> None:
        """Make SIGTERM and SIGINT ask the service to stop."""

        def ask(number: int, _: object) -> None:
            self.log.info("service.stopping", signal=signal.Signals(number).name)
            self.stop.set()
            self.inbox.put(None)

        signal.signal(signal.SIGTERM, ask)
        signal.signal(signal.SIGINT, ask)

    def _serve(self) -> int:
        now = self.clock()
        for tenant in self.tenants.values():
            self._start_watching(tenant)
            self._scan(tenant, now)
            self._schema(tenant)
            if self._unfinished(tenant):
                self._start_batch(tenant, [])
        next_rescan = now + self.config.service.rescan_interval
        next_liveness = now + _LIVENESS_EVERY
        next_heartbeat = now
        self.notifier.ready(f"watching {len(self.tenants)} drop folders")
        while not self.stop.is_set():
            self._wait(min(next_rescan, next_liveness, next_heartbeat, *self._deadlines()))
            now = self.clock()
            if now >= next_liveness:
                next_liveness = now + _LIVENESS_EVERY
                for tenant in self.tenants.values():
                    self._check_watch(tenant, now)
                    # A stat per schema file: an edit is in force within seconds.
                    self._schema(tenant)
            if now >= next_rescan:
                next_rescan = now + self.config.service.rescan_interval
                for tenant in self.tenants.values():
                    self._scan(tenant, now)
                    self._retry_unfinished(tenant, now)
                self._deliver_mail()
            for tenant in self.tenants.values():
                self._advance(tenant, now)
            if now >= next_heartbeat:
                next_heartbeat = now + self.config.service.heartbeat_interval
                self._heartbeat(now)
            self.notifier.ping(now, healthy=self._write_status(now))
        return 0

    def _once(self) -> int:
        """Process what is ready now: every stable file not being written."""
        now = self.clock()
        for tenant in self.tenants.values():
            self._scan(tenant, now)
        time.sleep(self.config.service.settle_time)
        results: list[BatchResult] = []
        now = self.clock()
        for tenant in self.tenants.values():
            self._scan(tenant, now)
            names = self._ready(tenant, now)
            results.extend(self._batch(tenant, names))
        assert self.journal is not None  # noqa: S101 - set by run
        Pipeline(self.config, self.journal, log=self.log).deliver_mail()
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
        if self._status_backoff:
            extra = [self._status_retry_at]
        else:
            extra = [self._status_written + 1.0] if self._status_dirty else []
        ping = self.notifier.next_ping()
        return [
            *extra,
            *([ping] if ping is not None else []),
            *[
                deadline
                for tenant in self.tenants.values()
                for deadline in (tenant.tracker.next_deadline(), tenant.batcher.deadline())
                if deadline is not None
            ],
        ]

    def _take(self, message: object) -> None:
        now = self.clock()
        self._status_dirty = True
        if isinstance(message, Change):
            tenant = self.tenants[message.tenant]
            if message.gone:
                tenant.tracker.forget(message.name)
                tenant.batcher.discard(message.name)
            elif message.signal is not None and message.name not in tenant.batcher:
                tenant.tracker.note(message.name, message.signal, now)
                tenant.tracker.observe(message.name, self._identity(tenant, message.name), now)
        elif isinstance(message, _Heard):
            self._heard(self.tenants[message.tenant], message.transaction, now)
        elif isinstance(message, _Done):
            self.batches_done += 1
            tenant = self.tenants[message.tenant]
            rescan = self.config.service.rescan_interval
            tenant.retry_delay = (
                rescan if message.complete else min(tenant.retry_delay * 2, _LONGEST_RETRY_DELAY)
            )
            tenant.retry_at = now + tenant.retry_delay

    # Tenants.

    def _advance(self, tenant: _Tenant, now: float) -> None:
        for name in self._ready(tenant, now):
            tenant.batcher.add(name, now)
            self._status_dirty = True
        interrupted = tenant.tracker.interrupted(now)
        if interrupted and not tenant.busy:
            for name in interrupted:
                tenant.tracker.forget(name)
            self._start_set_aside(tenant, interrupted)
            return
        names = tenant.batcher.take(now, busy=tenant.busy)
        if names:
            self._status_dirty = True
            self._start_batch(tenant, names)

    def _ready(self, tenant: _Tenant, now: float) -> list[str]:
        """Due files that are still unchanged and that no process is writing."""
        ready: list[str] = []
        if not tenant.folder_ok:
            return ready
        try:
            folder = DropFolder(tenant.config.drop_dir)
        except OSError:
            return ready
        with folder:
            for name in tenant.tracker.due(now):
                info = folder.lstat(name)
                tenant.tracker.observe(name, Identity.of(info) if info else None, now)
                if name not in tenant.tracker.due(now):
                    continue
                writer = folder.has_writer(name) if info and stat.S_ISREG(info.st_mode) else False
                if writer:
                    tenant.tracker.held(name, now)
                    self.log.info("file.still_open", tenant=tenant.config.name, file=name)
                    continue
                if writer is None and not tenant.lease_warned:
                    tenant.lease_warned = True
                    self.log.warning(
                        "watch.writer_check_unavailable",
                        tenant=tenant.config.name,
                        detail="no lease: grant CAP_LEASE so open files are never taken",
                    )
                tenant.tracker.forget(name)
                ready.append(name)
                self.log.info("file.ready", tenant=tenant.config.name, file=name)
        return ready

    def _start_watching(self, tenant: _Tenant) -> None:
        try:
            tenant.watch.start()
        except OSError as exc:
            tenant.folder_ok = False
            self.log.error(
                "tenant.drop_dir_missing",
                tenant=tenant.config.name,
                path=str(tenant.config.drop_dir),
                error=exc.strerror,
            )
            return
        tenant.folder_ok = True
        socket_path = tenant.config.sftp_log_socket
        if socket_path is not None and tenant.socket is None:
            try:
                tenant.socket = LogSocket(socket_path)
            except OSError as exc:
                self.log.error(
                    "sftp.socket_unavailable",
                    tenant=tenant.config.name,
                    path=str(socket_path),
                    error=exc.strerror,
                )
            else:
                # The SFTP server runs as the account that owns the drop folder.
                senders = frozenset({0, tenant.config.drop_dir.stat().st_uid})
                listener = threading.Thread(
                    target=self._listen,
                    args=(tenant.config.name, tenant.socket, senders),
                    daemon=True,
                )
                listener.start()
                self._listeners.append(listener)
                # The log names files as the chrooted client sees them.
                chroot = tenant.socket.chroot_folder
                drop = PurePosixPath(tenant.config.drop_dir)
                if drop.is_relative_to(chroot):
                    tenant.sftp_folder = PurePosixPath("/") / drop.relative_to(chroot)
                self.log.info("sftp.listening", tenant=tenant.config.name, path=str(socket_path))

    def _check_watch(self, tenant: _Tenant, now: float) -> None:
        if tenant.watch.alive():
            return
        if tenant.folder_ok:
            self.log.error("watch.observer_died", tenant=tenant.config.name)
        tenant.watch.stop()
        self._start_watching(tenant)
        if tenant.folder_ok:
            self.log.info("watch.observer_restarted", tenant=tenant.config.name)
            self._scan(tenant, now)

    def _scan(self, tenant: _Tenant, now: float) -> None:
        """Look at every entry, for files no event announced."""
        try:
            folder = DropFolder(tenant.config.drop_dir)
        except OSError as exc:
            if tenant.folder_ok:
                self.log.error(
                    "tenant.drop_dir_missing",
                    tenant=tenant.config.name,
                    path=str(tenant.config.drop_dir),
                    error=exc.strerror,
                )
            tenant.folder_ok = False
            return
        if not tenant.folder_ok:
            self.log.info("tenant.drop_dir_back", tenant=tenant.config.name)
        tenant.folder_ok = True
        with folder:
            everything = folder.entries()
            entries = [(n, i) for n, i in everything if not stat.S_ISDIR(i.st_mode)]
            self._subfolders(tenant, folder, [n for n, i in everything if stat.S_ISDIR(i.st_mode)])
        assert self.journal is not None  # noqa: S101 - set by run
        claimed = self.journal.claimed_entries(tenant.config.name)
        for name, info in entries:
            identity = Identity.of(info)
            if is_temporary(name):
                self._leftover(tenant, name, identity, now)
            elif (name, identity.dev, identity.ino, identity.mtime_ns) not in claimed and (
                name not in tenant.batcher
            ):
                tenant.tracker.observe(name, identity, now)
                tenant.tracker.note(name, "scan", now)
        names = {name for name, _ in entries}
        for state in tenant.tracker.states(now):
            if state.name not in names:
                tenant.tracker.forget(state.name)
        tenant.leftovers = {n: v for n, v in tenant.leftovers.items() if n in names}

    def _subfolders(self, tenant: _Tenant, folder: DropFolder, names: list[str]) -> None:
        """Report, once each, files put in a subfolder: only the drop folder itself is imported."""
        for name, inner, info in [(n, *entry) for n in names for entry in folder.inside(n)]:
            if not stat.S_ISREG(info.st_mode):
                continue
            key = (f"{name}/{inner}", Identity.of(info))
            if key in tenant.reported:
                continue
            tenant.reported.add(key)
            self.log.warning(
                "file.in_subfolder",
                tenant=tenant.config.name,
                folder=name,
                file=inner,
                bytes=info.st_size,
            )

    def _leftover(self, tenant: _Tenant, name: str, identity: Identity, now: float) -> None:
        """Report, once, a temporary upload file left unchanged for long."""
        seen = tenant.leftovers.get(name)
        if seen is None or seen[0] != identity:
            tenant.leftovers[name] = (identity, now)
            return
        if (name, identity) in tenant.reported:
            return
        if now - seen[1] >= self.config.service.leftover_after:
            tenant.reported.add((name, identity))
            self.log.warning(
                "file.left_unfinished",
                tenant=tenant.config.name,
                file=name,
                bytes=identity.size,
                unchanged_for=round(now - seen[1]),
            )

    def _retry_unfinished(self, tenant: _Tenant, now: float) -> None:
        """Resume a tenant's unfinished batches (rows pending) without waiting for an upload.

        After each run that could not finish, the next waits twice as long,
        up to an hour, so an API that stays down is not hammered.
        """
        if tenant.busy or now < tenant.retry_at or not self._unfinished(tenant):
            return
        self.log.info("batch.retrying", tenant=tenant.config.name, after=round(tenant.retry_delay))
        self._start_worker(tenant, lambda p: _resume_and_run(p, tenant.config, [], None))

    def _unfinished(self, tenant: _Tenant) -> bool:
        assert self.journal is not None  # noqa: S101 - set by run
        return bool(self.journal.unfinished_batches(tenant.config.name))

    @staticmethod
    def _identity(tenant: _Tenant, name: str) -> Identity | None:
        try:
            return Identity.of((tenant.config.drop_dir / name).lstat())
        except OSError:
            return None

    def _schema(self, tenant: _Tenant) -> None:
        self.schemas.refresh(tenant.config.name, tenant.config.schema)

    # The SFTP log.

    def _listen(self, tenant: str, sock: LogSocket, senders: frozenset[int]) -> None:
        forgers: set[int | None] = set()
        while not self.stop.is_set():
            try:
                datagram = sock.receive()
            except OSError:
                return
            if datagram is None:
                continue
            if not trusted(datagram, senders):
                if datagram.uid not in forgers:  # once per account: a flood stays one line
                    forgers.add(datagram.uid)
                    self.log.warning(
                        "sftp.untrusted_sender", tenant=tenant, uid=datagram.uid, pid=datagram.pid
                    )
                continue
            transaction = parse(datagram.data)
            if transaction is not None:
                self.inbox.put(_Heard(tenant=tenant, transaction=transaction))

    def _heard(self, tenant: _Tenant, t: Transaction, now: float) -> None:  # noqa: C901, PLR0912 - a case per kind
        """Turn one SFTP transaction into tracker signals and an audit event."""
        folder = tenant.sftp_folder
        name = name_in(t.path, folder) if folder is not None else None
        new_name = name_in(t.new_path, folder) if folder is not None and t.new_path else None
        fields = {"tenant": tenant.config.name, "pid": t.pid}
        match t.kind:
            case "open" if t.writes and name is not None:
                tenant.writers[name] = t.pid
                tenant.tracker.note(name, "sftp_open", now)
                self.log.info("sftp.upload_started", file=name, **fields)
            case "close" | "forced_close" if name is not None and tenant.writers.get(name) == t.pid:
                del tenant.writers[name]
                if t.kind == "close":
                    tenant.tracker.note(name, "sftp_close", now)
                    self.log.info("sftp.upload_finished", file=name, bytes=t.written, **fields)
                else:
                    tenant.tracker.note(name, "sftp_forced_close", now)
                    self.log.warning(
                        "sftp.upload_interrupted", file=name, bytes=t.written, **fields
                    )
            case "rename":
                if name is not None:
                    tenant.tracker.forget(name)
                if new_name is not None:
                    tenant.tracker.note(new_name, "sftp_renamed_in", now)
                    tenant.tracker.observe(new_name, self._identity(tenant, new_name), now)
                self.log.info(
                    "sftp.renamed", file=new_name or t.new_path, old=name or t.path, **fields
                )
            case "symlink" | "hardlink":
                self.log.warning(
                    "sftp.link_attempt",
                    kind=t.kind,
                    target=t.path,
                    link=new_name or t.new_path,
                    **fields,
                )
            case "refused":
                self.log.warning("sftp.request_refused", request=t.request, **fields)
            case "remove" if name is not None:
                tenant.tracker.forget(name)
                self.log.info("sftp.removed", file=name, **fields)
            case "session_opened":
                self.log.info("sftp.session_opened", user=t.user, **fields)
            case "session_closed":
                self.log.info("sftp.session_closed", user=t.user, **fields)
            case _:
                pass

    # Workers.

    def _start_batch(self, tenant: _Tenant, names: list[str]) -> None:
        in_force = self.schemas.current(tenant.config.name, tenant.config.schema)
        if names and in_force is None:
            self.log.error("batch.no_schema", tenant=tenant.config.name, files=len(names))
            tenant.blocked = set(names)
            for name in names:
                tenant.tracker.note(name, "scan", self.clock())
            return
        tenant.blocked = set()

        self._start_worker(tenant, lambda p: _resume_and_run(p, tenant.config, names, in_force))

    def _start_set_aside(self, tenant: _Tenant, names: list[str]) -> None:
        hours = self.config.service.interrupted_after / 3600
        refusals = [
            Refused(
                name=name,
                code=Code.FILE_INTERRUPTED,
                kind="interrupted",
                message=(
                    f"The upload of this file was cut off and not resumed within {hours:g} "
                    "hours, so it was set aside and not imported. Upload it again."
                ),
            )
            for name in names
        ]

        def work(pipeline: Pipeline) -> list[BatchResult]:
            batch_id = pipeline.set_aside(tenant.config, refusals)
            return [pipeline.run(batch_id)] if batch_id else []

        self._start_worker(tenant, work)

    def _start_worker(self, tenant: _Tenant, work: Callable[[Pipeline], list[BatchResult]]) -> None:
        def body() -> None:
            journal = Journal(self.config.service.state_dir / "journal.sqlite")
            complete = False
            try:
                pipeline = Pipeline(self.config, journal, log=self.log, stop=self.stop)
                complete = all(r.complete for r in work(pipeline))
                pipeline.deliver_mail()
            except Exception as exc:  # noqa: BLE001 - one batch failing must not stop the service
                trace = exc.__traceback__
                while trace is not None and trace.tb_next is not None:
                    trace = trace.tb_next
                self.log.error(
                    "batch.failed",
                    tenant=tenant.config.name,
                    error=type(exc).__name__,
                    where=f"{Path(trace.tb_frame.f_code.co_filename).name}:{trace.tb_lineno}"
                    if trace
                    else None,
                )
            finally:
                journal.close()
                self.inbox.put(_Done(tenant=tenant.config.name, complete=complete))

        tenant.worker = threading.Thread(
            target=body, name=f"batch-{tenant.config.name}", daemon=True
        )
        tenant.worker.start()

    def _batch(self, tenant: _Tenant, names: list[str]) -> list[BatchResult]:
        """Run a batch in this thread (for ``--once``)."""
        assert self.journal is not None  # noqa: S101 - set by run
        pipeline = Pipeline(self.config, self.journal, log=self.log, stop=self.stop)
        in_force = self.schemas.current(tenant.config.name, tenant.config.schema) if names else None
        if names and in_force is None:
            self.log.error("batch.no_schema", tenant=tenant.config.name, files=len(names))
            names = []
        return _resume_and_run(pipeline, tenant.config, names, in_force)

    def _deliver_mail(self) -> None:
        """Retry waiting mail in the background, when nothing else is sending it."""
        assert self.journal is not None  # noqa: S101 - set by run
        if self.journal.message_count("queued") == 0 or self.config.email is None:
            return
        if self.mail_worker is not None and self.mail_worker.is_alive():
            return

        def body() -> None:
            journal = Journal(self.config.service.state_dir / "journal.sqlite")
            try:
                Pipeline(self.config, journal, log=self.log).deliver_mail()
            finally:
                journal.close()

        self.mail_worker = threading.Thread(target=body, name="mail", daemon=True)
        self.mail_worker.start()

    def _heartbeat(self, now: float) -> None:
        assert self.journal is not None  # noqa: S101 - set by run
        tracked = sum(len(t.tracker.states(now)) for t in self.tenants.values())
        waiting = sum(len(t.batcher.waiting) for t in self.tenants.values())
        queued = self.journal.message_count("queued")
        if queued > self._outbox_seen:  # more waiting than at the last heartbeat
            self.log.warning("mail.outbox_growing", queued=queued, before=self._outbox_seen)
        self._outbox_seen = queued
        self.log.info(
            "service.heartbeat",
            tenants=len(self.tenants),
            files_tracked=tracked,
            files_waiting=waiting,
            batches_running=sum(1 for t in self.tenants.values() if t.busy),
            batches_done=self.batches_done,
            outbox=self.journal.message_count("queued"),
        )

    def _write_status(self, now: float) -> bool:
        """Write what each tenant is waiting for, at most once a second.

        ``watcher status`` reads it; a failed write means the state folder
        cannot be written, and the service stops reporting itself healthy.
        """
        if self._status_backoff:
            if now < self._status_retry_at:
                return False
        else:
            quiet = now - self._status_written
            if quiet < 1.0 or (not self._status_dirty and quiet < _LONGEST_SLEEP):
                return True
        document = {
            "pid": os.getpid(),
            "updated_at": time.time(),
            "tenants": {name: self._tenant_status(t, now) for name, t in self.tenants.items()},
        }
        temporary = self.status_path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(document, indent=1))
            temporary.replace(self.status_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            # Once per change of state, then tries less and less often: a full
            # disk must not turn the loop into a busy one.
            if not self._status_backoff:
                self.log.error(
                    "service.state_unwritable", path=str(self.status_path), error=exc.strerror
                )
            self._status_backoff = min(self._status_backoff * 2 or 1.0, _LONGEST_STATUS_BACKOFF)
            self._status_retry_at = now + self._status_backoff
            return False
        if self._status_backoff:
            self.log.info("service.state_writable", path=str(self.status_path))
        self._status_backoff = 0.0
        self._status_written = now
        self._status_dirty = False
        return True

    def _tenant_status(self, tenant: _Tenant, now: float) -> dict[str, object]:
        in_force = self.schemas.current(tenant.config.name, tenant.config.schema)
        settle = self.config.service.settle_time
        files = [
            {
                "name": shown(f.name),
                "state": "blocked: no valid schema"
                if in_force is None and f.name in tenant.blocked
                else "interrupted"
                if f.interrupted
                else "uploading"
                if f.writing or not f.complete
                else "settling"
                if f.quiet_for < settle
                else "checking",
            }
            for f in tenant.tracker.states(now)
        ]
        deadline = tenant.batcher.deadline()
        files += [{"name": shown(n), "state": "in the next batch"} for n in tenant.batcher.waiting]
        return {
            "folder_ok": tenant.folder_ok,
            "files": files,
            "batch_in": None if deadline is None else max(0.0, round(deadline - now, 1)),
            "batch_running": tenant.busy,
            "schema": None
            if in_force is None
            else {
                "version": in_force.schema.label,
                "digest": in_force.schema.digest,
                "path": str(in_force.path),
            },
            "schema_on_disk": self.schemas.refused(tenant.config.name),
        }

    def _shutdown(self) -> None:
        self.notifier.stopping()
        self.stop.set()
        for tenant in self.tenants.values():
            tenant.watch.stop()
            if tenant.socket is not None:
                tenant.socket.close()
                tenant.socket = None
        for tenant in self.tenants.values():
            if tenant.worker is not None:
                tenant.worker.join()
        if self.mail_worker is not None:
            self.mail_worker.join()
        with contextlib.suppress(Exception):
            self.log.info("service.stopped", batches_done=self.batches_done)


def _resume_and_run(
    pipeline: Pipeline, tenant: TenantConfig, names: list[str], in_force: InForce | None
) -> list[BatchResult]:
    """Finish the tenant's unfinished batches, then claim ``names`` and run them."""
    results = pipeline.resume(tenant.name)
    batch_id = pipeline.claim(tenant, names, schema=in_force) if names else None
    if batch_id is not None:
        results.append(pipeline.run(batch_id))
    return results
