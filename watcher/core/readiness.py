"""Deciding when an upload is finished: pure, with the clock passed in.

A close event is no proof: a killed client closes the file too, and a file
renamed into place by the standard SFTP rename (link, then unlink) arrives
with no close at all. So a file is *due* when all of these hold:

- it had a completion signal: closed after writing, moved or linked onto its
  name, found by a scan (nothing else can be known of a file that arrived
  while the service was down), or, where the server's log is heard, a
  ``close`` or rename in the SFTP log, an ``OK UPLOAD`` or rename in vsftpd's;
- its identity (inode, size, modification time) has not changed for the
  settle time, measured on the service's own monotonic clock; never by the
  file's mtime, which ``put -p`` sets to the source's, even mid-upload;
- it is not held open as interrupted: when the SFTP log says ``forced
  close`` (vsftpd's, ``FAIL UPLOAD``), the upload died, and only a later
  ``close`` (``OK UPLOAD``) of a resumed upload completes it.

The shell then checks that no process holds the file open for writing before
taking it. Names that uploads use while in progress (``*.filepart``, dotfiles,
...) are never due; :func:`is_temporary` says which.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from watcher.core.records import Identity

__all__ = ["TEMPORARY_PATTERNS", "Signal", "Tracker", "UploadState", "is_temporary"]

Signal = Literal[
    "created",
    "written",
    "closed",
    "moved_in",
    "scan",
    "sftp_open",
    "sftp_close",
    "sftp_forced_close",
    "sftp_renamed_in",
    "ftps_uploaded",
    "ftps_failed",
]

TEMPORARY_PATTERNS = (
    "*.filepart",
    "*.part",
    "*.tmp",
    "*.temp",
    "*.partial",
    "*.crdownload",
    "*~",
    ".*",
    "~$*",
)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is what clients call a file while it is being uploaded."""
    return any(fnmatch.fnmatchcase(name, p) for p in TEMPORARY_PATTERNS)


@dataclasses.dataclass(slots=True, kw_only=True)
class _File:
    first_seen: float
    changed_at: float
    identity: Identity | None = None
    complete: bool = False
    writing: bool = False
    interrupted_at: float | None = None
    logged: bool = False  # a server's log speaks for the file
    signalled: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UploadState:
    """What the tracker knows of one file, for status and tests."""

    name: str
    complete: bool
    writing: bool
    interrupted: bool
    quiet_for: float


class Tracker:
    """The upload state of one drop folder's files."""

    def __init__(self, *, settle: float, interrupted_after: float) -> None:
        self.settle = settle
        self.interrupted_after = interrupted_after
        self._files: dict[str, _File] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._files

    def _file(self, name: str, now: float) -> _File:
        file = self._files.get(name)
        if file is None:
            file = self._files[name] = _File(first_seen=now, changed_at=now)
        return file

    def note(self, name: str, signal: Signal, now: float) -> None:  # noqa: C901 - a case per signal
        """Record what an event or the SFTP log said about ``name``."""
        if is_temporary(name):
            return
        file = self._file(name, now)
        if signal != "scan":
            file.signalled = True
        if file.logged and signal in ("created", "moved_in", "written", "closed"):
            # The log speaks for this file: folder events, which may arrive
            # before or after its messages, only mark a change.
            file.changed_at = now
            return
        match signal:
            case "created" | "moved_in":
                file.changed_at = now
                if not file.writing:
                    file.complete = True
            case "written":
                file.changed_at = now
                file.writing = True
                file.complete = False
            case "closed":
                file.changed_at = now
                file.writing = False
                file.complete = True
            case "scan":
                # Found with no event at all: it arrived while nobody watched.
                if not file.signalled:
                    file.complete = True
            case "sftp_open":
                file.logged, file.writing, file.complete = True, True, False
                file.interrupted_at = None
                file.changed_at = now
            case "sftp_close" | "sftp_renamed_in" | "ftps_uploaded":
                file.logged, file.writing, file.complete = True, False, True
                file.interrupted_at = None
                file.changed_at = now
            case "sftp_forced_close" | "ftps_failed":
                file.logged, file.writing, file.complete = True, False, False
                file.interrupted_at = now
                file.changed_at = now

    def observe(self, name: str, identity: Identity | None, now: float) -> None:
        """Record what a look at the folder found: the file's identity, or nothing."""
        if identity is None:
            self._files.pop(name, None)
            return
        if is_temporary(name):
            return
        file = self._file(name, now)
        if identity != file.identity:
            if file.identity is not None:
                file.changed_at = now
            file.identity = identity

    def forget(self, name: str) -> None:
        """Stop tracking ``name`` (it was taken into a batch, or is gone)."""
        self._files.pop(name, None)

    def unconfirmed(self, name: str, size: int, now: float) -> bool:
        """Whether ``name``, empty and spoken for by no server log, is a failed upload (held so).

        For a folder whose uploads vsftpd logs: a client whose data connection
        is refused (vsftpd asks it to reuse the control connection's TLS
        session, and Python's ftplib does not) leaves a 0-byte file and no log
        line. It is held as an interrupted upload until one succeeds, not
        taken for an empty file; an empty file really sent is logged.
        """
        file = self._files.get(name)
        if file is None or size or file.logged:
            return False
        self.note(name, "ftps_failed", now)
        return True

    def taken(self, name: str) -> float:
        """Stop tracking ``name``, taken into a batch; when it was first heard of."""
        return self._files.pop(name).first_seen

    def held(self, name: str, now: float) -> None:
        """The file is open for writing after all: wait a settle time more."""
        file = self._files.get(name)
        if file is not None:
            file.changed_at = now

    def due(self, now: float) -> list[str]:
        """Files that look finished, oldest first, for the writer check."""
        ready = [
            (file.changed_at, name)
            for name, file in self._files.items()
            if file.complete
            and not file.writing
            and file.interrupted_at is None
            and file.identity is not None
            and now - file.changed_at >= self.settle
        ]
        return [name for _, name in sorted(ready)]

    def interrupted(self, now: float) -> list[str]:
        """Interrupted uploads that were never resumed within the allowed time."""
        return sorted(
            name
            for name, file in self._files.items()
            if file.interrupted_at is not None
            and now - file.interrupted_at >= self.interrupted_after
        )

    def next_deadline(self) -> float | None:
        """When the next file may become due or time out as interrupted."""
        times = [
            f.changed_at + self.settle
            for f in self._files.values()
            if f.complete and not f.writing and f.interrupted_at is None
        ] + [
            f.interrupted_at + self.interrupted_after
            for f in self._files.values()
            if f.interrupted_at is not None
        ]
        return min(times) if times else None

    def states(self, now: float) -> list[UploadState]:
        """Every tracked file's state, by name."""
        return [
            UploadState(
                name=name,
                complete=file.complete,
                writing=file.writing,
                interrupted=file.interrupted_at is not None,
                quiet_for=now - file.changed_at,
            )
            for name, file in sorted(self._files.items())
        ]
