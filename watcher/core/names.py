"""File names as the customer wrote them, made safe for every place they go.

On Linux a name is bytes: any byte but ``/`` and NUL, up to ``NAME_MAX`` (255)
bytes. Python hands undecodable bytes over as lone surrogates
(``surrogateescape``), and a customer's SFTP client can put a newline, a tab or
a carriage return in a name. Each place a name goes has its own limits:

- the journal stores it losslessly (:func:`to_stored`, :func:`from_stored`);
- people (an email, a log line, ``watcher status``) see it with every control
  character and undecodable byte escaped (:func:`shown`);
- an email attachment name must be one header line (:func:`attachment_name`);
- an archive name must fit ``NAME_MAX`` with the longest suffix the service
  adds beside it (:func:`archive_name`), and so must a check's answer
  (:func:`answer_name`).

Pure: strings in, strings out.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import re
import time
import unicodedata

__all__ = [
    "ARCHIVE_SUFFIXES",
    "NAME_MAX",
    "answer_name",
    "archive_name",
    "archived_at",
    "attachment_name",
    "from_stored",
    "shown",
    "to_stored",
]

NAME_MAX = 255
# What the archive step writes beside an archived file, longest first.
ARCHIVE_SUFFIXES = (".failures.csv", ".result.json")
_REFUSED = ".refused"
_LONGEST_SUFFIX = max(len(s) for s in ARCHIVE_SUFFIXES)
_ATTACHMENT_STEM = 100
_KEEP_EXTENSION = 16
# surrogateescape turns each byte 0x80-0xFF that is not UTF-8 into U+DC80-U+DCFF.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)
_SURROGATES = range(0xD800, 0xE000)
_LATIN1_END = 0x100
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_STAMP = re.compile(r"\d{8}T\d{6}Z")
_ID_START = re.compile(r"[0-9a-f]{8}")


def _escape(char: str) -> str | None:
    """The escape of a character people should not see raw, or None to keep it."""
    code = ord(char)
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if code in _SURROGATES or unicodedata.category(char) in ("Cc", "Zl", "Zp"):
        return f"\\x{code:02x}" if code < _LATIN1_END else f"\\u{code:04x}"
    if char == "\\":
        return "\\\\"
    return None


def shown(name: str) -> str:
    r"""``name`` for people: control characters and undecodable bytes escaped.

    ``"a\nb.csv"`` is shown as ``a\x0ab.csv``; the byte 0xFF as ``\xff``; a
    backslash is doubled, so no two names are shown alike.
    """
    if name.isprintable() and "\\" not in name:
        return name
    return "".join(_escape(c) or c for c in name)


def to_stored(name: str) -> str | bytes:
    """``name`` as the journal keeps it: text when it is UTF-8, else its bytes."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


def from_stored(value: str | bytes) -> str:
    """The name :func:`to_stored` kept."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _fit(text: str, limit: int) -> str:
    """The longest start of ``text`` whose file-system encoding fits ``limit`` bytes."""
    if len(os.fsencode(text)) <= limit:
        return text
    end = min(len(text), limit)
    while end and len(os.fsencode(text[:end])) > limit:
        end -= 1
    return text[:end]


def _split(name: str) -> tuple[str, str]:
    """Stem and extension (without its dot); a long "extension" is part of the stem."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > _KEEP_EXTENSION:
        return name, ""
    return stem, suffix


def archive_name(name: str, file_id: str, when: float, *, refused: bool = False) -> str:
    """A ``.bak`` name for ``name`` that no other archive has, and that fits.

    The stem is shortened when needed so the name with the longest report
    suffix still fits ``NAME_MAX``; the time and the file id's start keep it
    unique, and the extension is kept.
    """
    stem, suffix = _split(name)
    stamp = time.strftime(_STAMP_FORMAT, time.gmtime(when))
    tail = f".{stamp}.{file_id[:8]}" + (f".{suffix}" if suffix else "")
    tail += _REFUSED if refused else ""
    room = NAME_MAX - _LONGEST_SUFFIX - len(os.fsencode(tail))
    return _fit(stem, room) + tail


def archived_at(name: str) -> int | None:
    """When the service archived ``name`` (a name :func:`archive_name` made), or None.

    Only the tail the service appends is read, from the right: the stamp, the
    id's start, the kept extension, ``.refused`` and a report suffix. A stamp
    the customer wrote earlier in the name (``x.20260230T000000Z.deadbeef.csv``,
    an impossible date, or one far in the future) is never looked at, and a
    tail that is not exactly the service's is None, never an error.
    """
    rest = name
    for suffix in ARCHIVE_SUFFIXES:
        rest = rest.removesuffix(suffix)
        if len(rest) != len(name):
            break
    parts = rest.removesuffix(_REFUSED).split(".")
    # With a kept extension: ... STAMP . ID . ext; without: ... STAMP . ID.
    candidates = []
    if len(parts) >= 4 and 0 < len(parts[-1]) <= _KEEP_EXTENSION:  # noqa: PLR2004 - stem, stamp, id, ext
        candidates.append((parts[-3], parts[-2]))
    if len(parts) >= 3:  # noqa: PLR2004 - stem, stamp, id
        candidates.append((parts[-2], parts[-1]))
    for stamp, start in candidates:
        if _STAMP.fullmatch(stamp) and _ID_START.fullmatch(start):
            try:
                return calendar.timegm(time.strptime(stamp, _STAMP_FORMAT))
            except ValueError:
                return None
    return None


def answer_name(name: str, suffix: str) -> str:
    """``name`` + ``suffix`` (a check's answer beside the file), shortened to fit ``NAME_MAX``.

    A name too long for the suffix keeps its start and gets a short digest
    of the whole name, so two long names that start alike get two answers.
    """
    whole = name + suffix
    if len(os.fsencode(whole)) <= NAME_MAX:
        return whole
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    return f"{_fit(name, NAME_MAX - len(suffix) - len(digest) - 1)}~{digest}{suffix}"


def attachment_name(name: str) -> str:
    """The name of the failure list attached for ``name``: ``failed-<stem>.csv``.

    Control characters and undecodable bytes become ``_`` (a header cannot
    hold them) and the stem is kept short.
    """
    stem, _ = _split(name)
    clean = "".join("_" if _escape(c) not in (None, "\\\\") else c for c in stem)
    return f"failed-{clean[:_ATTACHMENT_STEM]}.csv"
