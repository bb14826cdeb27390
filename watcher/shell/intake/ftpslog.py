"""Following vsftpd's log file: every line once, across rotations and restarts.

The service reads the log in its own loop, twice a second and right before it
decides whether a file is finished, so an upload's ``FAIL UPLOAD`` (written
as vsftpd closes the file) is always heard before the settle time lets the
partial file through. How far the log was read is kept in the state folder
(``ftps-log.json``): a restart goes on from there, in the rotated file first
when the log was rotated meanwhile, so a failure logged while the service
was down still holds its file back.

Rotation renames the file and vsftpd makes a new one; a session that started
before keeps writing to the old file, so a rotated file is still read until it
has been quiet for an hour. A file truncated in place is read again from its
start. Lines are read whole: a line vsftpd is still writing waits for its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import TYPE_CHECKING

from watcher.core.ftpslog import Transfer, parse
from watcher.shell.files import replace_file

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config
    from watcher.shell.statedir import StateDir

__all__ = ["FtpsLog", "ftps_users", "open_ftps_log"]

_QUIET = 3600.0  # a rotated file is read until it has not grown for this long
_MAX_LINE = 64 * 1024  # longer is not vsftpd's: dropped


class _Followed:
    """One open log file: where it was read to, and what of a line is still unfinished."""

    def __init__(
        self, fd: int, identity: tuple[int, int], offset: int, timer: Callable[[], float]
    ) -> None:
        self.fd = fd
        self.identity = identity
        self.offset = offset
        self.partial = b""
        self.timer = timer
        self.grew_at = timer()

    def read(self) -> list[bytes]:
        """Whole lines written since the last read."""
        chunks = []
        while chunk := os.pread(self.fd, 1 << 20, self.offset):
            chunks.append(chunk)
            self.offset += len(chunk)
        if not chunks:
            return []
        self.grew_at = self.timer()
        data = self.partial + b"".join(chunks)
        *lines, self.partial = data.split(b"\n")
        if len(self.partial) > _MAX_LINE:
            self.partial = b""
        return lines

    @property
    def done(self) -> int:
        """The offset of the end of the last whole line read."""
        return self.offset - len(self.partial)

    def close(self) -> None:
        os.close(self.fd)


class FtpsLog:
    """vsftpd's log, each line handed on once to the tenant whose account wrote it."""

    def __init__(
        self,
        path: Path,
        mark: Path,
        users: dict[str, str],
        *,
        log: FilteringBoundLogger,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """Follow ``path``; ``users`` maps FTPS accounts to tenants; ``mark`` keeps the place."""
        self.timer = timer
        self.path = path
        self.mark = mark
        self.users = users
        self.log = log
        self.current: _Followed | None = None
        self.rotated: list[_Followed] = []
        self.unreadable = False
        self._saved: tuple[int, int, int] | None = None
        # A log that did not exist when first looked for is read from its start.
        self._at_end = True

    def open(self) -> None:
        """Start where the last run stopped (or, the first time, at the log's end)."""
        saved = self._load()
        try:
            info = self.path.stat()
        except OSError as exc:
            self._at_end = self._at_end and not isinstance(exc, FileNotFoundError)
            self._cannot(exc)
            return
        here = (info.st_dev, info.st_ino)
        if saved is None:
            self._follow(here, info.st_size if self._at_end else 0)
            return
        identity, offset = saved[:2], saved[2]
        if identity == here:
            self._follow(here, offset if offset <= info.st_size else 0)
            return
        old = self.path.with_name(self.path.name + ".1")
        with contextlib.suppress(OSError):
            fd = os.open(old, os.O_RDONLY | os.O_CLOEXEC)
            found = os.fstat(fd)
            if (found.st_dev, found.st_ino) == identity:
                self.rotated.append(_Followed(fd, identity, offset, self.timer))
            else:
                os.close(fd)
        self._follow(here, 0)  # made since the last run: every line is new

    def read(self, deliver: Callable[[str, Transfer], None]) -> int:
        """Hand every new line's transfer to ``deliver(tenant, transfer)``; how many lines."""
        if self.current is None:
            self.open()
            if self.current is None:
                return 0
        lines = [line for old in self.rotated for line in old.read()]
        lines += self.current.read()
        lines += self._check_rotation()
        now = self.timer()
        for old in [o for o in self.rotated if now - o.grew_at > _QUIET]:
            old.close()
            self.rotated.remove(old)
        for raw in lines:
            transfer = parse(raw.decode("utf-8", errors="replace"))
            if transfer is None:
                continue
            tenant = self.users.get(transfer.user)
            if tenant is not None:
                deliver(tenant, transfer)
        self._save()
        return len(lines)

    def close(self) -> None:
        """Close every file followed."""
        for followed in [*self.rotated, *([self.current] if self.current else [])]:
            followed.close()
        self.rotated, self.current = [], None

    def _check_rotation(self) -> list[bytes]:
        assert self.current is not None  # noqa: S101 - read opened it
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return []  # renamed; vsftpd makes the new one with its next line
        except OSError as exc:
            self._cannot(exc)
            return []
        here = (info.st_dev, info.st_ino)
        if here != self.current.identity:
            self.rotated.append(self.current)
            self.current = None
            self._follow(here, 0)
            return self._read_current()
        if info.st_size < self.current.offset:  # truncated in place
            self.current.offset, self.current.partial = 0, b""
            return self.current.read()
        return []

    def _read_current(self) -> list[bytes]:
        return self.current.read() if self.current is not None else []

    def _follow(self, identity: tuple[int, int], offset: int) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self._cannot(exc)
            return
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != identity:
            offset = 0
        self.current = _Followed(fd, (info.st_dev, info.st_ino), offset, self.timer)
        self.log.info("ftps.log_followed", path=str(self.path), offset=offset)
        self.unreadable = False

    def _cannot(self, exc: OSError) -> None:
        if not self.unreadable:
            self.log.error("ftps.log_unreadable", path=str(self.path), error=exc.strerror)
        self.unreadable = True

    def _load(self) -> tuple[int, int, int] | None:
        try:
            found = json.loads(self.mark.read_text())
            return int(found["dev"]), int(found["ino"]), int(found["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self) -> None:
        if self.current is None:
            return
        place = (*self.current.identity, self.current.done)
        if place == self._saved:
            return
        dev, ino, offset = place
        with contextlib.suppress(OSError):  # a full disk only costs lines read again
            replace_file(
                self.mark.parent,
                self.mark.name,
                json.dumps({"dev": dev, "ino": ino, "offset": offset}).encode(),
            )
            self._saved = place


def open_ftps_log(
    config: Config,
    state: StateDir,
    log: FilteringBoundLogger,
    *,
    timer: Callable[[], float] = time.monotonic,
) -> FtpsLog | None:
    """The log to follow when ``ftps_log`` is set and a tenant has an FTPS account."""
    users = ftps_users(config)
    if config.service.ftps_log is None or not users:
        return None
    return FtpsLog(config.service.ftps_log, state.ftps_mark, users, log=log, timer=timer)


def ftps_users(config: Config) -> dict[str, str]:
    """Each FTPS account of the configuration, to its tenant's name."""
    return {t.ftps_user: t.name for t in config.tenants if t.ftps_user is not None}
