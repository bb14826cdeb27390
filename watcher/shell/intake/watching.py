"""Watching drop folders with watchdog, in the one place the OS watcher is entered.

The event handler does one thing, a ``queue.put``, and can never raise: an
exception in a watchdog handler silently ends its dispatch thread for good.
Events are turned into :class:`watcher.core.signals.Change` values by a pure
helper, for the service, which does the thinking. Watches are not recursive
(``.bak/`` and other subfolders are not drop folders). Inotify can lose
events (queue overflow is only a warning) and an observer thread can die; the
service rescans periodically and restarts dead observers, so no file depends
on an event arriving. On network filesystems, where inotify sees nothing and
no close events exist, the polling observer is used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from watcher.core.signals import LaneKind, changes

if TYPE_CHECKING:
    import queue
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger
    from watchdog.observers.api import BaseObserver

    from watcher.config import Observer as ObserverKind


class _StopRace(logging.Filter):
    """Drops watchdog's error for a read that raced the observer's own stop.

    When an observer stops while its emitter waits in ``read_event``, watchdog
    7's ``InotifyEmitter.queue_events`` logs "called when the thread is
    inactive" at error level (through logging's last-resort handler, so on
    stderr) although nothing went wrong: the emitter was stopped on purpose.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


logging.getLogger("watchdog.observers.inotify").addFilter(_StopRace())

__all__ = ["Presence", "Watch"]


class _Handler(FileSystemEventHandler):
    """Hands every event to the service's queue; never raises."""

    def __init__(
        self, tenant: str, lane: LaneKind, folder: str, inbox: queue.Queue[object]
    ) -> None:
        self.tenant = tenant
        self.lane = lane
        self.folder = folder
        self.inbox = inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            for change in changes(self.tenant, self.folder, event, self.lane):
                self.inbox.put_nowait(change)
        except Exception:  # noqa: BLE001, S110 - raising here would kill watchdog's thread
            pass


class Watch:
    """One drop folder's observer, which can be checked and restarted."""

    def __init__(
        self,
        tenant: str,
        lane: LaneKind,
        folder: Path,
        kind: ObserverKind,
        inbox: queue.Queue[object],
    ) -> None:
        self.tenant = tenant
        self.lane = lane
        self.folder = folder
        self.kind = kind
        self.inbox = inbox
        self.observer: BaseObserver | None = None

    def start(self) -> None:
        """Start observing; OSError when the folder cannot be watched."""
        observer: BaseObserver = (
            PollingObserver(timeout=1.0) if self.kind == "polling" else Observer()
        )
        observer.daemon = True
        observer.schedule(
            _Handler(self.tenant, self.lane, str(self.folder), self.inbox),
            str(self.folder),
            recursive=False,
        )
        observer.start()
        self.observer = observer

    def alive(self) -> bool:
        """Whether the observer and its emitters are all running."""
        observer = self.observer
        if observer is None or not observer.is_alive():
            return False
        return all(emitter.is_alive() for emitter in observer.emitters)

    def stop(self) -> None:
        """Stop observing (safe on a dead or never-started observer)."""
        observer, self.observer = self.observer, None
        if observer is None:
            return
        try:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)
        except Exception:  # noqa: BLE001, S110 - a broken observer is being discarded anyway
            pass


class Presence:
    """A lane's folder: whether it is there, its observer, and one line when that changes."""

    def __init__(self, watch: Watch, *, tenant: str, log: FilteringBoundLogger) -> None:
        self.watch = watch
        self.tenant = tenant
        self.log = log
        self.ok = True

    def start(self) -> bool:
        """Start observing; whether the folder could be watched."""
        try:
            self.watch.start()
        except OSError as exc:
            self.lost(exc)
            return False
        self.back()
        return True

    def restart(self) -> bool:
        """Restart a dead observer; whether one was restarted (then scan what it missed)."""
        if self.watch.alive():
            return False
        if self.ok:
            self.log.error("watch.observer_died", tenant=self.tenant)
        self.watch.stop()
        if not self.start():
            return False
        self.log.info("watch.observer_restarted", tenant=self.tenant)
        return True

    def lost(self, exc: OSError) -> None:
        """The folder is gone or closed to the service: said once, until it is back."""
        if self.ok:
            self.log.error(
                "tenant.drop_dir_missing",
                tenant=self.tenant,
                path=str(self.watch.folder),
                error=exc.strerror,
            )
        self.ok = False

    def back(self) -> None:
        """The folder can be opened (again): said when it had been missing."""
        if not self.ok:
            self.log.info("tenant.drop_dir_back", tenant=self.tenant)
        self.ok = True
