"""Taking files out of a drop folder without trusting anything in it.

Customers can create symbolic links and hard links in their chroot, replace
``.bak`` with a link, or leave a FIFO where a file should be. Every operation
here is relative to an open directory descriptor and never follows a link:
files are opened with ``O_NOFOLLOW`` and checked with ``fstat`` on the open
descriptor (a regular file, one link, within the size limit) before a byte is
read. A claimed file is copied into the service's spool, so whatever the
customer does to the drop folder afterwards cannot change what is imported.
Archiving writes the spool copy (what was processed) into ``.bak/`` as a
file of the service's own, under a name no earlier archive has, then removes
the original: the customer owns what they uploaded and could write to it
wherever it lies, but cannot change the service's copy in the service's
``.bak``. A ``.bak`` that is not the service's (a customer made it first) is
set aside like one that is not a folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import errno
import fcntl
import hashlib
import os
import secrets
import time
from typing import TYPE_CHECKING, Self

from watcher.core.records import Identity
from watcher.core.refusals import Refused, check_entry, refused
from watcher.shell.files import copy_file, replace_file, write_all

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

__all__ = ["BAK", "Busy", "ClaimResult", "Claimed", "DropFolder", "Gone", "move", "service_owns"]

BAK = ".bak"
_CHUNK = 1024 * 1024
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Claimed:
    """A file copied into the spool, with the identity and hash it had."""

    name: str
    identity: Identity
    sha256: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Busy:
    """A file that changed while it was copied: not claimed, try again later."""

    name: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Gone:
    """A file that was no longer there."""

    name: str


ClaimResult = Claimed | Refused | Busy | Gone

_RENAME_NOREPLACE = 1
# The running program's own symbols, libc's among them: no search for the
# library (find_library runs ldconfig in a subprocess).
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def service_owns(info: os.stat_result) -> bool:
    """Whether a ``.bak`` folder is the service's own, closed to writing by others."""
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def move(src_dir: int, name: str, dst_dir: int, target: str) -> None:
    """Rename ``name`` to ``target`` between two folders, never replacing ``target``.

    A rename moves the entry itself (a link stays a link) and needs no access
    to the file, only to the folders: the service does not own customers'
    files, and ``fs.protected_hardlinks`` forbids linking them. renameat2 with
    RENAME_NOREPLACE fails rather than overwrite; where the filesystem lacks
    it, the target is checked first (the service is the only writer of .bak).

    Raises:
        FileExistsError: ``target`` exists.
        FileNotFoundError: ``name`` does not.
    """
    if _renameat2 is not None:
        done = _renameat2(
            src_dir, os.fsencode(name), dst_dir, os.fsencode(target), _RENAME_NOREPLACE
        )
        if done == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code), name)
    if _exists(target, dst_dir):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target)
    os.rename(name, target, src_dir_fd=src_dir, dst_dir_fd=dst_dir)


class DropFolder:
    """One tenant's drop folder, held open by a directory descriptor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, _OPEN_DIR)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the directory descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def entries(self) -> list[tuple[str, os.stat_result]]:
        """Every entry but ``.bak``, with its own (not a link target's) status."""
        found: list[tuple[str, os.stat_result]] = []
        for name in os.listdir(self.fd):  # noqa: PTH208 - by descriptor, never by path
            if name == BAK:
                continue
            try:
                found.append((name, os.stat(name, dir_fd=self.fd, follow_symlinks=False)))
            except FileNotFoundError:
                continue
        return found

    def inside(self, folder: str) -> list[tuple[str, os.stat_result]]:
        """The entries of a subfolder, never through a link; empty when it cannot be read."""
        try:
            fd = os.open(folder, _OPEN_DIR, dir_fd=self.fd)
        except OSError:
            return []
        found: list[tuple[str, os.stat_result]] = []
        try:
            for name in os.listdir(fd):  # noqa: PTH208 - by descriptor, never by path
                with contextlib.suppress(FileNotFoundError):
                    found.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
        finally:
            os.close(fd)
        return found

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry's own status, or None when it is gone."""
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def claim(self, name: str, spool: Path, max_size: int) -> ClaimResult:
        """Copy ``name`` into ``spool`` if it is a plain file of allowed size.

        The checks run on the open descriptor, so a link swapped in between
        looking and opening is still refused. A file that changes while it is
        copied is left for later (:class:`Busy`).
        """
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=self.fd)
        except FileNotFoundError:
            return Gone(name=name)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return refused(name, "symlink")
            if exc.errno in (errno.ENXIO, errno.EOPNOTSUPP):
                return refused(name, "special")
            if exc.errno in (errno.EACCES, errno.EPERM):
                return refused(name, "unreadable")
            raise
        try:
            before = os.fstat(fd)
            refusal = check_entry(name, before, max_size)
            if refusal is not None:
                return refusal
            try:
                digest = _copy(fd, spool, max_size)
            except OSError:
                spool.unlink(missing_ok=True)  # a full spool must not keep half a copy
                raise
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if digest is None:
            spool.unlink(missing_ok=True)
            return refused(name, "too_large", max_size=max_size)
        if Identity.of(before) != Identity.of(after):
            spool.unlink(missing_ok=True)
            return Busy(name=name)
        return Claimed(name=name, identity=Identity.of(before), sha256=digest)

    def has_writer(self, name: str) -> bool | None:
        """Whether any process on the host holds ``name`` open for writing.

        A read lease (``F_SETLEASE``) is refused with EAGAIN exactly then; it
        is released at once. None when it cannot be told: the lease needs
        the file's owner or CAP_LEASE, and links and FIFOs take none.
        """
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=self.fd)
        except OSError:
            return None
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            return True if exc.errno == errno.EAGAIN else None
        else:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            return False
        finally:
            os.close(fd)

    def bak(self) -> int:
        """A descriptor for ``.bak``, created if missing, never through a link.

        A ``.bak`` that is anything but a real folder of the service's own,
        closed to writing by others (a customer can replace it with a symbolic
        link, or make it before the service does, and then write in it), is
        renamed aside and a new folder made.
        """
        for _ in range(3):
            try:
                fd = os.open(BAK, _OPEN_DIR, dir_fd=self.fd)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(BAK, mode=0o755, dir_fd=self.fd)
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                self._set_aside("not-a-folder")
                continue
            if service_owns(os.fstat(fd)):
                return fd
            os.close(fd)
            self._set_aside("not-ours")
        raise FileExistsError(errno.EEXIST, "cannot make a .bak folder", str(self.path))

    def _set_aside(self, why: str) -> None:
        aside = f"{BAK}.{why}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(BAK, aside, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def archive(self, name: str, identity: Identity, target: str, spool: Path) -> None:
        """Put what was processed into ``.bak/target`` and remove the original; idempotent.

        ``.bak/target`` is the spool copy, the service's own file. The original
        is removed only while the drop folder still holds the very file that
        was claimed (same inode, size and modification time): a new upload put
        there meanwhile stays to be processed.
        """
        bak = self.bak()
        try:
            if not _exists(target, bak):
                copy_file(spool, bak, target)
            self._remove_original(name, identity, bak)
        finally:
            os.close(bak)

    def _remove_original(self, name: str, identity: Identity, bak: int) -> None:
        """Remove ``name`` if it is still the claimed file, never a file uploaded since.

        It is first moved into ``.bak`` under a hidden name, then looked at: a
        file that turns out to be another (replaced between the look and the
        move) goes back where the customer put it.
        """
        current = self.lstat(name)
        # Inode numbers are reused at once, so size and modification time must
        # match too; a rename changes neither (only the ctime).
        if current is None or Identity.of(current) != identity:
            return
        hidden = f".removed-{secrets.token_hex(6)}"
        try:
            move(self.fd, name, bak, hidden)
        except FileNotFoundError:
            return
        if Identity.of(os.stat(hidden, dir_fd=bak, follow_symlinks=False)) == identity:
            os.unlink(hidden, dir_fd=bak)
            return
        with contextlib.suppress(FileExistsError):  # a newer upload again: keep it hidden in .bak
            move(bak, hidden, self.fd, name)

    def quarantine(self, name: str, target: str) -> bool:
        """Move a refused entry itself (never its target) into ``.bak``.

        Returns whether it was moved; an entry already gone is not an error.
        """
        bak = self.bak()
        try:
            move(self.fd, name, bak, target)
        except FileNotFoundError:
            return False
        except FileExistsError:
            return True
        finally:
            os.close(bak)
        return True

    def write_bak(self, target: str, data: bytes) -> None:
        """Write ``data`` as ``.bak/target``, whole or not at all (a report beside an archive)."""
        bak = self.bak()
        try:
            replace_file(bak, target, data)
        finally:
            os.close(bak)


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _copy(fd: int, spool: Path, max_size: int) -> str | None:
    """Copy the open file into ``spool`` (synced); its SHA-256, or None if too large."""
    digest = hashlib.sha256()
    copied = 0
    spool.parent.mkdir(parents=True, exist_ok=True)
    out = os.open(spool, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        while chunk := os.read(fd, _CHUNK):
            copied += len(chunk)
            if copied > max_size:
                return None
            digest.update(chunk)
            write_all(out, chunk)
        os.fsync(out)
    finally:
        os.close(out)
    return digest.hexdigest()
