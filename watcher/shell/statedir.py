"""The state folder: every path the service keeps there, and the lock that makes it one's.

::

    STATE/
      journal.sqlite      every batch's, file's, row's and message's state
      spool/<tenant>/     copies of claimed files (and their failure lists) until archived
      outbox/             reports waiting to be sent (or kept, without SMTP)
      check-mail/<tenant>/  check answers waiting to go out together, one message a while
      sent/               reports the SMTP server accepted
      schemas/<tenant>.json   the schema in force, for a restart with a broken file
      users.sqlite        the embedded user store, when no API is configured
      status.json         what the running service is waiting for, rewritten every second
      ftps-log.json       how far vsftpd's log has been read (its file and offset)
      watcher.lock        the pid of the process holding the lock
      instances/<name>/   with a shared database: each instance's lock,
                          status.json and ftps-log.json (the rest is shared)

Nothing else builds a path into the state folder.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import socket
from typing import TYPE_CHECKING

from watcher.errors import AlreadyRunningError, StateError
from watcher.shell.files import replace_file
from watcher.shell.journal import PostgresTarget

if TYPE_CHECKING:
    from pathlib import Path

    from watcher.config import ServiceConfig
    from watcher.shell.journal import JournalAt

__all__ = ["StateDir", "StateLock"]


@dataclasses.dataclass(frozen=True, slots=True)
class StateDir:
    """The state folder of one service, or the one several instances share.

    With a shared database (``database``), the folder is on storage every
    instance reaches, for the spool and the outbox a tenant's next owner
    needs; what belongs to one instance (its lock, its status file, how far
    it read vsftpd's log) is in ``instances/<instance>/``.
    """

    root: Path
    database: PostgresTarget | None = None
    instance: str | None = None

    @classmethod
    def of(cls, service: ServiceConfig) -> StateDir:
        """The state folder a configuration names, with its database and instance."""
        if service.database is None:
            return cls(service.state_dir)
        target = PostgresTarget(service.database, service.database_password)
        return cls(service.state_dir, target, service.instance or socket.gethostname())

    @property
    def own(self) -> Path:
        """This instance's own folder: the state folder, or ``instances/<instance>/`` in it."""
        return self.root if self.instance is None else self.root / "instances" / self.instance

    @property
    def journal(self) -> JournalAt:
        """The journal: the shared database, or the SQLite file in the folder."""
        return self.database if self.database is not None else self.root / "journal.sqlite"

    def has_journal(self) -> bool:
        """Whether there is a journal to read (a shared database always is)."""
        return self.database is not None or (self.root / "journal.sqlite").exists()

    @property
    def spool_root(self) -> Path:
        """Where every tenant's claimed copies are kept."""
        return self.root / "spool"

    def spool(self, tenant: str, file_id: str, suffix: str = ".csv") -> Path:
        """Where a claimed file's copy (``.csv``) or its failure list is kept."""
        return self.spool_root / tenant / f"{file_id}{suffix}"

    def failures(self, tenant: str, file_id: str) -> Path:
        """Where a claimed file's failure list waits for its archive."""
        return self.spool(tenant, file_id, ".failures.csv")

    @property
    def outbox(self) -> Path:
        """Where reports wait to be sent (or stay, without SMTP)."""
        return self.root / "outbox"

    def check_mail(self, tenant: str) -> Path:
        """Where a tenant's check answers wait to go out together in one message."""
        return self.root / "check-mail" / tenant

    @property
    def sent(self) -> Path:
        """Where reports go once the SMTP server accepted them."""
        return self.root / "sent"

    @property
    def schemas(self) -> Path:
        """Where the schema in force of each tenant is kept."""
        return self.root / "schemas"

    @property
    def users(self) -> Path:
        """The embedded user store."""
        return self.root / "users.sqlite"

    @property
    def status(self) -> Path:
        """The running service's status file."""
        return self.own / "status.json"

    @property
    def ftps_mark(self) -> Path:
        """How far vsftpd's log has been read, for a restart to go on from there."""
        return self.own / "ftps-log.json"

    @property
    def lock_file(self) -> Path:
        """The file naming the process that holds the lock."""
        return self.own / "watcher.lock"

    def lock(self) -> StateLock:
        """Take the state folder for this process; see :class:`StateLock`."""
        return StateLock(self)

    def locked(self) -> bool:
        """Whether a process holds the lock (without taking it)."""
        try:
            fd = os.open(self.own, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)


class StateLock:
    """An exclusive lock on a state folder, held for the process's life.

    The lock is taken on the folder itself, not on a file in it: a lock file
    can be deleted while the service runs, and a second instance would then
    lock a new one and share the journal. ``watcher.lock`` only tells people
    which process holds the lock.
    """

    def __init__(self, state: StateDir) -> None:
        """Take the lock.

        Raises:
            AlreadyRunningError: another process holds it.
            StateError: the folder cannot be made, opened or written.
        """
        try:
            state.own.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(state.own, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise StateError(
                f"the state folder {state.root} cannot be used ({exc.strerror}): create it "
                "writable by the service's user (systemd's StateDirectory= does)"
            ) from exc
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self.fd)
            try:
                holder = state.lock_file.read_text(errors="replace").strip() or "unknown"
            except OSError:
                holder = "unknown"
            raise AlreadyRunningError(
                f"another watcher is running on {state.own} (pid {holder})"
            ) from exc
        try:
            replace_file(self.fd, state.lock_file.name, f"{os.getpid()}\n".encode())
        except OSError as exc:
            self.release()
            raise StateError(
                f"the state folder {state.root} cannot be written ({exc.strerror}): make it "
                "writable by the service's user and free space on its disk"
            ) from exc

    def release(self) -> None:
        """Release the lock."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
