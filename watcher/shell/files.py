"""Writing a file whole or not at all: a temporary name, fsync, then rename.

Every file the service writes for others to read (the status file, a report
in the outbox or in ``.bak``, an archived copy, the kept schema, the lock's
pid) goes through :func:`replace_file` or :func:`copy_file`, with one policy:
the data is flushed to disk (``fsync``) before the rename, so after a crash a
reader finds the old file or the new one, never part of one. The folder
itself is not synced: a crash may undo the rename, which every writer here
tolerates (it writes again when its step is resumed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["copy_file", "replace_file", "write_all"]

_CHUNK = 1024 * 1024
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def replace_file(folder: Path | int, name: str, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` as ``name`` in ``folder`` (a path or an open directory descriptor).

    Raises:
        OSError: the folder cannot be written; no temporary file is left.
    """
    view = memoryview(data)
    _write(folder, name, (view[i : i + _CHUNK] for i in range(0, len(view), _CHUNK)), mode)


def copy_file(source: Path, folder: Path | int, name: str, *, mode: int = 0o644) -> None:
    """Copy the file ``source`` as ``name`` in ``folder``, a megabyte at a time.

    Raises:
        OSError: ``source`` cannot be read or the folder written; no temporary
            file is left.
    """
    with source.open("rb") as handle:
        _write(folder, name, iter(lambda: handle.read(_CHUNK), b""), mode)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may take less than it is given)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write(folder: Path | int, name: str, chunks: Iterable[bytes | memoryview], mode: int) -> None:
    if isinstance(folder, Path):
        fd = os.open(folder, _OPEN_DIR)
        try:
            _write(fd, name, chunks, mode)
        finally:
            os.close(fd)
        return
    # Short and hidden: it fits beside a name as long as a name can be, and no
    # scan takes it for an upload.
    temporary = f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
    out = os.open(temporary, _CREATE, mode, dir_fd=folder)
    try:
        try:
            for chunk in chunks:
                write_all(out, chunk)
            os.fsync(out)
        finally:
            os.close(out)
        os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise
