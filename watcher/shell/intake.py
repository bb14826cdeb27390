"""One tenant's intake: from watchdog events, scans and the SFTP log to files ready for a batch.

A :class:`TenantIntake` owns what the service knows of one drop folder: the
upload tracker (:mod:`watcher.core.readiness`), the batch window
(:mod:`watcher.core.batching`), the folder's observer and the SFTP log
listener. It takes the messages the loop hands it, scans the folder for what
events missed, and says which files are ready: due by the tracker's rules
and held open by no process. Everything here runs on the service's loop
thread, except the listener, which only puts messages on the queue.
"""

from __future__ import annotations

import dataclasses
import functools
import stat
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

from watcher.core.answers import is_answer
from watcher.core.batching import Batcher
from watcher.core.readiness import Tracker, is_temporary
from watcher.core.records import Identity
from watcher.core.signals import Change, Heard, hear, hear_ftps
from watcher.shell.dropfolder import DropFolder
from watcher.shell.logsocket import LogSocket, listen_to
from watcher.shell.strays import Strays
from watcher.shell.watching import Watch

if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Callable
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.config import ServiceConfig, TenantConfig
    from watcher.core.ftpslog import Transfer
    from watcher.core.sftplog import Transaction

__all__ = ["Lane", "Logged", "TenantIntake"]

Lane = Literal["import", "check"]
_CHECK = "check"  # the check lane's folder in the drop folder: not a stray subfolder


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Logged:
    """A transaction of a tenant's SFTP log, as the listener puts it on the queue."""

    tenant: str
    transaction: Transaction


class TenantIntake:
    """What the service keeps for one tenant, up to the moment its files are ready."""

    def __init__(
        self,
        config: TenantConfig,
        service: ServiceConfig,
        *,
        inbox: queue.Queue[object],
        log: FilteringBoundLogger,
        claimed: Callable[[str], set[tuple[str, int, int, int]]],
        stop: threading.Event,
        lane: Lane = "import",
    ) -> None:
        """Set up the tenant's intake; nothing is watched until :meth:`start`.

        Args:
            config: the tenant.
            service: the settle time, windows and observer kind.
            inbox: the service's queue, for events and SFTP transactions.
            log: the service's logger.
            claimed: the entries an unfinished batch of a tenant holds.
            stop: set when the service stops, to end the listener.
            lane: ``import`` watches the drop folder; ``check`` its check folder,
                whose files are answered, never imported, without a window.
        """
        self.config = config
        self.lane: Lane = lane
        self.folder = config.drop_dir if lane == "import" else config.check_dir
        # The key of this lane's messages on the queue, and its files in the log.
        self.key = config.name if lane == "import" else f"{config.name}/check"
        self.prefix = "" if lane == "import" else "check/"
        self.service = service
        self.inbox = inbox
        self.log = log
        self.claimed = claimed
        self.stop = stop
        self.tracker = Tracker(
            settle=service.settle_time, interrupted_after=service.interrupted_after
        )
        self.batcher = Batcher(service.batch_window if lane == "import" else 0.0)
        self.watch = Watch(self.key, self.folder, service.observer, inbox)
        self.strays = Strays(config.name, leftover_after=service.leftover_after, log=log)
        self.socket: LogSocket | None = None
        self.listener: threading.Thread | None = None
        self.writers: dict[str, int] = {}
        self.folder_ok = True
        self.lease_warned = False
        # Files ready but held because no schema is in force.
        self.blocked: set[str] = set()
        # The folder as the chrooted SFTP client sees it, once the log is heard.
        self.sftp_folder: PurePosixPath | None = None
        self.ftps_folder = _ftps_folder(config, lane)

    @property
    def name(self) -> str:
        """The tenant's name."""
        return self.config.name

    # Messages from the loop.

    def ignored(self, name: str) -> bool:
        """Whether ``name`` is the lane's own doing: a check's answers."""
        return self.lane == "check" and is_answer(name)

    def changed(self, change: Change, now: float) -> None:
        """Take a watchdog event's meaning into the tracker."""
        if self.ignored(change.name):
            return
        if change.gone:
            self.tracker.forget(change.name)
            self.batcher.discard(change.name)
        elif change.signal is not None and change.name not in self.batcher:
            self.tracker.note(change.name, change.signal, now)
            self.tracker.observe(change.name, self._identity(change.name), now)

    def heard(self, transaction: Transaction, now: float, *, audit: bool = True) -> None:
        """Take one SFTP transaction into the tracker, and log it as an audit event.

        Every lane of a tenant hears its log; only one (``audit``) logs it.
        """
        self._apply(hear(transaction, self.sftp_folder, self.writers, self.name), now, audit)

    def heard_ftps(self, transfer: Transfer, now: float, *, audit: bool = True) -> None:
        """Take one line of vsftpd's log into the tracker, and log it as an audit event."""
        if self.ftps_folder is None:
            return
        names = functools.partial(_entries, self.folder)
        self._apply(hear_ftps(transfer, self.ftps_folder, self.name, names), now, audit)

    def _apply(self, heard: Heard, now: float, audit: bool) -> None:  # noqa: FBT001
        if heard.writer is not None:
            name, pid = heard.writer
            if pid is None:
                self.writers.pop(name, None)
            else:
                self.writers[name] = pid
        for name in heard.forget:
            self.tracker.forget(name)
        for name, signal in heard.notes:
            if not self.ignored(name):
                self.tracker.note(name, signal, now)
        for name in heard.observe:
            if not self.ignored(name):
                self.tracker.observe(name, self._identity(name), now)
        if heard.audit is not None and audit:
            event = heard.audit
            write = self.log.warning if event.level == "warning" else self.log.info
            write(event.event, **event.fields)

    # Watching.

    def start(self) -> None:
        """Start watching the folder and, if configured, listening to its SFTP log."""
        try:
            self.watch.start()
        except OSError as exc:
            self.unreachable(exc)
            return
        self.reachable()
        if (
            self.lane == "import"
            and self.config.sftp_log_socket is not None
            and self.socket is None
        ):
            self._listen()

    def unreachable(self, exc: OSError) -> None:
        """The folder is gone or closed to the service: said once, until it is back."""
        if self.folder_ok:
            self.log.error(
                "tenant.drop_dir_missing",
                tenant=self.name,
                path=str(self.folder),
                error=exc.strerror,
            )
        self.folder_ok = False

    def reachable(self) -> None:
        """The folder can be opened (again): said when it had been missing."""
        if not self.folder_ok:
            self.log.info("tenant.drop_dir_back", tenant=self.name)
        self.folder_ok = True

    def check(self, now: float) -> None:
        """Restart a dead observer, then scan for what it missed."""
        if self.watch.alive():
            return
        if self.folder_ok:
            self.log.error("watch.observer_died", tenant=self.name)
        self.watch.stop()
        self.start()
        if self.folder_ok:
            self.log.info("watch.observer_restarted", tenant=self.name)
            self.scan(now)

    def close(self) -> None:
        """Stop watching and listening (the listener ends with the service's stop)."""
        self.watch.stop()
        if self.socket is not None:
            self.socket.close()
            self.socket = None

    def _listen(self) -> None:
        found = listen_to(
            self.config,
            deliver=lambda t: self.inbox.put(Logged(tenant=self.name, transaction=t)),
            stop=self.stop,
            log=self.log,
        )
        if found is not None:
            self.socket, self.listener, self.sftp_folder = found

    # Finding files.

    def scan(self, now: float) -> None:
        """Look at every entry, for files no event announced."""
        try:
            folder = DropFolder(self.folder)
        except OSError as exc:
            self.unreachable(exc)
            return
        self.reachable()
        with folder:
            everything = folder.entries()
            entries = [
                (n, i) for n, i in everything if not stat.S_ISDIR(i.st_mode) and not self.ignored(n)
            ]
            subfolders = [
                n
                for n, i in everything
                if stat.S_ISDIR(i.st_mode) and (self.lane == "check" or n != _CHECK)
            ]
            self.strays.in_subfolders(folder, subfolders)
        claimed = self.claimed(self.name)
        for name, info in entries:
            identity = Identity.of(info)
            if is_temporary(name):
                self.strays.leftover(name, identity, now)
            elif (name, identity.dev, identity.ino, identity.mtime_ns) not in claimed and (
                name not in self.batcher
            ):
                self.tracker.observe(name, identity, now)
                self.tracker.note(name, "scan", now)
        names = {name for name, _ in entries}
        for state in self.tracker.states(now):
            if state.name not in names:
                self.tracker.forget(state.name)
        self.strays.keep_only(names)

    def ready(self, now: float) -> list[str]:
        """Due files that are still unchanged and that no process is writing."""
        ready: list[str] = []
        if not self.folder_ok:
            return ready
        try:
            folder = DropFolder(self.folder)
        except OSError:
            return ready
        with folder:
            for name in self.tracker.due(now):
                info = folder.lstat(name)
                self.tracker.observe(name, Identity.of(info) if info else None, now)
                if name not in self.tracker.due(now):
                    continue
                writer = folder.has_writer(name) if info and stat.S_ISREG(info.st_mode) else False
                if writer:
                    self.tracker.held(name, now)
                    self.log.info("file.still_open", tenant=self.name, file=self.prefix + name)
                    continue
                if writer is None and not self.lease_warned:
                    self.lease_warned = True
                    self.log.warning(
                        "watch.writer_check_unavailable",
                        tenant=self.name,
                        detail="no lease: grant CAP_LEASE so open files are never taken",
                    )
                self.tracker.forget(name)
                ready.append(name)
                self.log.info("file.ready", tenant=self.name, file=self.prefix + name)
        return ready

    def _identity(self, name: str) -> Identity | None:
        try:
            return Identity.of((self.folder / name).lstat())
        except OSError:
            return None


def _ftps_folder(config: TenantConfig, lane: Lane) -> PurePosixPath | None:
    """The lane's folder as the chrooted FTPS client sees it, for a tenant with FTPS.

    vsftpd's chroot is the drop folder's parent, as ``watcher tenant add`` makes it.
    """
    if config.ftps_user is None:
        return None
    folder = PurePosixPath("/") / config.drop_dir.name
    return folder / _CHECK if lane == "check" else folder


def _entries(folder: Path) -> list[str]:
    """The names in ``folder`` (none when it cannot be read)."""
    try:
        return [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
