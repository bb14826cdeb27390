"""Drop-folder entries that are never read, and the words the customer gets for each.

Links, FIFOs, folders, files with other names, files too large, uploads cut
off and never resumed: each is refused as a whole with a stable code and a
sentence the customer can act on. Pure: a file's status in, a refusal out.
"""

from __future__ import annotations

import dataclasses
import stat
from typing import TYPE_CHECKING, Literal

from watcher.core.codes import Code

if TYPE_CHECKING:
    import os

__all__ = ["Kind", "Refused", "check_entry", "interrupted", "refused"]

Kind = Literal["symlink", "hardlink", "special", "folder", "unreadable", "too_large", "interrupted"]

_REASONS: dict[Kind, str] = {
    "symlink": (
        "This is a symbolic link, not a file. Links are never followed; upload the file itself."
    ),
    "hardlink": (
        "This file has other names (hard links) elsewhere, so it was not read; upload a copy of it."
    ),
    "special": "This is not a regular file (a pipe, socket or device), so it was not read.",
    "folder": "This is a folder; only files directly in the drop folder are imported.",
    "unreadable": (
        "The import service may not read this file: its permissions were changed during "
        "the upload (an option such as put -p). Upload it without preserving permissions."
    ),
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """A drop-folder entry that is not read, and why, in words for the customer."""

    name: str
    code: Code
    kind: Kind
    message: str


def refused(name: str, kind: Kind, *, max_size: int = 0) -> Refused:
    """The refusal of ``name`` for ``kind`` (``max_size``: the limit a large file broke)."""
    if kind == "too_large":
        return Refused(
            name=name,
            code=Code.FILE_TOO_LARGE,
            kind=kind,
            message=(
                f"The file is larger than the limit of {max_size / 1024**2:,.0f} MiB; split "
                "it into smaller files and upload them one by one."
            ),
        )
    return Refused(name=name, code=Code.FILE_REFUSED, kind=kind, message=_REASONS[kind])


def interrupted(name: str, *, after: float) -> Refused:
    """The refusal of an upload cut off and not resumed within ``after`` seconds."""
    return Refused(
        name=name,
        code=Code.FILE_INTERRUPTED,
        kind="interrupted",
        message=(
            f"The upload of this file was cut off and not resumed within {after / 3600:g} "
            "hours, so it was set aside and not imported. Upload it again."
        ),
    )


def check_entry(name: str, info: os.stat_result, max_size: int) -> Refused | None:
    """Why an open entry (its ``fstat``) must not be read, or None when it may."""
    if stat.S_ISDIR(info.st_mode):
        return refused(name, "folder")
    if not stat.S_ISREG(info.st_mode):
        return refused(name, "special")
    if info.st_nlink != 1:
        return refused(name, "hardlink")
    if info.st_size > max_size:
        return refused(name, "too_large", max_size=max_size)
    return None
