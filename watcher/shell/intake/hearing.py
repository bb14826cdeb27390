"""What the servers' own logs say of one lane's files: OpenSSH's transactions, vsftpd's lines.

A :class:`Hearing` belongs to one lane. It turns each SFTP transaction or
vsftpd line (:func:`watcher.core.signals.hear`, :func:`~watcher.core.signals.hear_ftps`)
into notes for the lane's upload tracker, keeps which process is writing
which file, and logs the transaction as an audit event (one lane of a
tenant does, so each transaction is logged once).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

from watcher.core.signals import Heard, hear, hear_ftps

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from pathlib import Path, PurePosixPath

    from structlog.typing import FilteringBoundLogger

    from watcher.core.ftpslog import Transfer
    from watcher.core.readiness import Tracker
    from watcher.core.records import Identity
    from watcher.core.sftplog import Transaction

__all__ = ["Hearing", "Logged"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Logged:
    """A transaction of a tenant's SFTP log, as the listener puts it on the queue."""

    tenant: str
    transaction: Transaction


class Hearing:
    """One lane's ear for the SFTP and FTPS logs."""

    def __init__(
        self,
        *,
        tenant: str,
        folder: Path,
        tracker: Tracker,
        ignored: Callable[[str], bool],
        identity: Callable[[str], Identity | None],
        log: FilteringBoundLogger,
        ftps_folder: PurePosixPath | None,
    ) -> None:
        self.tenant = tenant
        self.folder = folder
        self.tracker = tracker
        self.ignored = ignored
        self.identity = identity
        self.log = log
        self.writers: dict[str, int] = {}
        # The folder as the chrooted SFTP client sees it, once the log is heard.
        self.sftp_folder: PurePosixPath | None = None
        # The folder as the chrooted FTPS client sees it, for a tenant with FTPS.
        self.ftps_folder = ftps_folder

    def heard(self, transaction: Transaction, now: float, *, audit: bool = True) -> None:
        """Take one SFTP transaction into the tracker; log it when ``audit``."""
        self._apply(hear(transaction, self.sftp_folder, self.writers, self.tenant), now, audit)

    def heard_ftps(self, transfer: Transfer, now: float, *, audit: bool = True) -> None:
        """Take one line of vsftpd's log into the tracker; log it when ``audit``."""
        if self.ftps_folder is None:
            return
        names = functools.partial(_entries, self.folder)
        self._apply(hear_ftps(transfer, self.ftps_folder, self.tenant, names), now, audit)

    def unconfirmed(self, name: str, info: os.stat_result | None, now: float) -> bool:
        """An empty file no log spoke for, where vsftpd logs uploads: held as a failed upload."""
        if self.ftps_folder is None or info is None:
            return False
        return self.tracker.unconfirmed(name, info.st_size, now)

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
                self.tracker.observe(name, self.identity(name), now)
        if heard.audit is not None and audit:
            event = heard.audit
            write = self.log.warning if event.level == "warning" else self.log.info
            write(event.event, **event.fields)


def _entries(folder: Path) -> list[str]:
    """The names in ``folder`` (none when it cannot be read)."""
    try:
        return [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
