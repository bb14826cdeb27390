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
import stat
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from watcher.core.answers import is_answer
from watcher.core.batching import Batcher
from watcher.core.readiness import Tracker, UploadState, is_temporary
from watcher.core.records import Identity
from watcher.core.signals import Change, LaneKind
from watcher.shell.intake.dropfolder import DropFolder
from watcher.shell.intake.hearing import Hearing, Logged
from watcher.shell.intake.logsocket import LogSocket, listen_to
from watcher.shell.intake.strays import Strays
from watcher.shell.intake.watching import Presence, Watch

if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

    from watcher.config import ServiceConfig, TenantConfig

__all__ = ["LaneSnapshot", "TenantIntake"]

_CHECK = "check"  # the check lane's folder in the drop folder: not a stray subfolder


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LaneSnapshot:
    """What one lane holds now, as plain values: what status, the page and the roster read."""

    kind: LaneKind
    prefix: str  # how its files are named in the log and the status: "" or "check/"
    folder_ok: bool
    settle: float
    uploads: tuple[UploadState, ...]  # files tracked, not yet ready
    waiting: tuple[str, ...]  # files ready, in the open window
    blocked: frozenset[str]  # files held back for want of a schema
    window_closes: float | None


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
        kind: LaneKind = LaneKind.IMPORT,
    ) -> None:
        """Set up one lane of a tenant; nothing is watched until :meth:`start`.

        ``claimed`` gives the entries an unfinished batch of a tenant holds;
        ``kind`` ``check`` watches the check folder, whose files are answered,
        never imported, without a window.
        """
        self.config = config
        self.kind = kind
        checking = kind is LaneKind.CHECK
        self.folder = config.check_dir if checking else config.drop_dir
        # How the lane's files are named in the log and the status.
        self.prefix = "check/" if checking else ""
        self.service = service
        self.inbox = inbox
        self.log = log
        self.claimed = claimed
        self.stop = stop
        self._tracker = Tracker(
            settle=service.settle_time, interrupted_after=service.interrupted_after
        )
        self._batcher = Batcher(0.0 if checking else service.batch_window)
        watch = Watch(config.name, kind, self.folder, service.observer, inbox)
        self.presence = Presence(watch, tenant=config.name, log=log)
        self.strays = Strays(config.name, leftover_after=service.leftover_after, log=log)
        self.socket: LogSocket | None = None
        self.listener: threading.Thread | None = None
        self.lease_warned = False
        # Files ready but held because no schema is in force.
        self._blocked: frozenset[str] = frozenset()
        # When each ready file was first heard of (the loop's clock), until handed over.
        self._seen: dict[str, float] = {}
        self.hearing = Hearing(
            tenant=config.name,
            folder=self.folder,
            tracker=self._tracker,
            ignored=self.ignored,
            identity=self._identity,
            log=log,
            ftps_folder=_ftps_folder(config, kind),
        )

    @property
    def name(self) -> str:
        """The tenant's name."""
        return self.config.name

    # Messages from the loop.

    def ignored(self, name: str) -> bool:
        """Whether ``name`` is the lane's own doing: a check's answers."""
        return self.kind is LaneKind.CHECK and is_answer(name)

    def changed(self, change: Change, now: float) -> None:
        """Take a watchdog event's meaning into the tracker."""
        if self.ignored(change.name):
            return
        if change.gone:
            self._tracker.forget(change.name)
            self._batcher.discard(change.name)
        elif change.signal is not None and change.name not in self._batcher:
            self._tracker.note(change.name, change.signal, now)
            self._tracker.observe(change.name, self._identity(change.name), now)

    # Watching.

    @property
    def watch(self) -> Watch:
        """The folder's observer."""
        return self.presence.watch

    @property
    def folder_ok(self) -> bool:
        """Whether the folder was there at the last look."""
        return self.presence.ok

    def start(self) -> None:
        """Start watching the folder and, if configured, listening to its SFTP log."""
        if not self.presence.start():
            return
        if (
            self.kind is LaneKind.IMPORT
            and self.config.sftp_log_socket is not None
            and self.socket is None
        ):
            self._listen()

    def check(self, now: float) -> None:
        """Restart a dead observer, then scan for what it missed."""
        if self.presence.restart():
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
            self.socket, self.listener, self.hearing.sftp_folder = found

    # Finding files.

    def scan(self, now: float) -> None:
        """Look at every entry, for files no event announced."""
        try:
            folder = DropFolder(self.folder)
        except OSError as exc:
            self.presence.lost(exc)
            return
        self.presence.back()
        with folder:
            everything = folder.entries()
            entries = [
                (n, i) for n, i in everything if not stat.S_ISDIR(i.st_mode) and not self.ignored(n)
            ]
            subfolders = [
                n
                for n, i in everything
                if stat.S_ISDIR(i.st_mode) and (self.kind is LaneKind.CHECK or n != _CHECK)
            ]
            self.strays.in_subfolders(folder, subfolders)
        claimed = self.claimed(self.name)
        for name, info in entries:
            identity = Identity.of(info)
            if is_temporary(name):
                self.strays.leftover(name, identity, now)
            elif (name, identity.dev, identity.ino, identity.mtime_ns) not in claimed and (
                name not in self._batcher
            ):
                self._tracker.observe(name, identity, now)
                self._tracker.note(name, "scan", now)
        names = {name for name, _ in entries}
        for state in self._tracker.states(now):
            if state.name not in names:
                self._tracker.forget(state.name)
        self._seen = {n: t for n, t in self._seen.items() if n in names}
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
            for name in self._tracker.due(now):
                info = folder.lstat(name)
                self._tracker.observe(name, Identity.of(info) if info else None, now)
                if name not in self._tracker.due(now) or self.hearing.unconfirmed(name, info, now):
                    continue
                writer = folder.has_writer(name) if info and stat.S_ISREG(info.st_mode) else False
                if writer:
                    self._tracker.held(name, now)
                    self.log.info("file.still_open", tenant=self.name, file=self.prefix + name)
                    continue
                if writer is None and not self.lease_warned:
                    self.lease_warned = True
                    self.log.warning(
                        "watch.writer_check_unavailable",
                        tenant=self.name,
                        detail="no lease: grant CAP_LEASE so open files are never taken",
                    )
                self._seen.setdefault(name, self._tracker.taken(name))  # outlives the tracker
                ready.append(name)
                self.log.info("file.ready", tenant=self.name, file=self.prefix + name)
        return ready

    # What the lane's owner asks of it.

    def gather(self, now: float) -> bool:
        """Put every ready file in the lane's window; whether there was one."""
        ready = self.ready(now)
        for name in ready:
            self._batcher.add(name, now)
        return bool(ready)

    def take(self, now: float, *, busy: bool) -> list[str]:
        """The files of a window that closed (none while ``busy``: they wait for the next)."""
        return self._batcher.take(now, busy=busy)

    def waited(self, names: list[str], now: float) -> dict[str, float]:
        """How long ago each of ``names`` was first heard of: what its customer has waited."""
        return {name: now - self._seen.pop(name) for name in names if name in self._seen}

    def interrupted(self, now: float) -> list[str]:
        """Uploads cut off and never resumed in time, forgotten here as they are handed over."""
        gone = self._tracker.interrupted(now)
        for name in gone:
            self._tracker.forget(name)
        return gone

    def hold_back(self, names: list[str], now: float) -> None:
        """Files ready while no schema is in force, shown as blocked (none: nothing is)."""
        self._blocked = frozenset(names)
        for name in names:
            self._tracker.note(name, "scan", now)

    def deadlines(self) -> list[float | None]:
        """When the lane's next file may be due, and when its window closes."""
        return [self._tracker.next_deadline(), self._batcher.deadline()]

    def watching(self) -> bool:
        """Whether the folder is there and its observer alive."""
        return self.folder_ok and self.watch.alive()

    def snapshot(self, now: float) -> LaneSnapshot:
        """What the lane holds now, as plain values."""
        return LaneSnapshot(
            kind=self.kind,
            prefix=self.prefix,
            folder_ok=self.folder_ok,
            settle=self.service.settle_time,
            uploads=tuple(self._tracker.states(now)),
            waiting=tuple(self._batcher.waiting),
            blocked=self._blocked,
            window_closes=self._batcher.deadline(),
        )

    def _identity(self, name: str) -> Identity | None:
        try:
            return Identity.of((self.folder / name).lstat())
        except OSError:
            return None


def _ftps_folder(config: TenantConfig, kind: LaneKind) -> PurePosixPath | None:
    """The lane's folder as the chrooted FTPS client sees it, for a tenant with FTPS.

    vsftpd's chroot is the drop folder's parent, as ``watcher tenant add`` makes it.
    """
    if config.ftps_user is None:
        return None
    folder = PurePosixPath("/") / config.drop_dir.name
    return folder / _CHECK if kind is LaneKind.CHECK else folder
