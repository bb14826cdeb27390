"""OpenSSH's SFTP transaction log, heard through the chroot's syslog socket.

``internal-sftp -l INFO`` inside a chroot logs every transaction to
``<chroot>/dev/log``, one datagram per message::

    <38>Nov 22 05:58:57 internal-sftp[19092]: open "/upload/x.csv" flags WRITE,CREATE,TRUNCATE
    <38>Nov 22 05:58:59 internal-sftp[19092]: forced close "/upload/x.csv" bytes read 0 written 5
    <38>Nov 22 05:59:18 internal-sftp[19158]: close "/upload/x.csv" bytes read 0 written 2649
    <38>Nov 22 05:59:18 internal-sftp[19158]: posix-rename old "/upload/x.part" new "/upload/x.csv"

It is the only signal that tells a finished upload from one whose client
died: both end with a close and then silence. :func:`parse` turns a datagram
into a :class:`Transaction`; :func:`trusted` says whether its sender may be
believed. Pure: :class:`watcher.shell.intake.logsocket.LogSocket` does the listening.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePosixPath
from typing import Literal

__all__ = ["Datagram", "Kind", "Transaction", "name_in", "parse", "trusted"]

Kind = Literal[
    "open",
    "close",
    "forced_close",
    "rename",
    "symlink",
    "hardlink",
    "remove",
    "mkdir",
    "session_opened",
    "session_closed",
    "refused",
]

_HEADER = re.compile(
    r"^(?:<\d+>)?(?:\w{3} [ \d]\d \d\d:\d\d:\d\d )?"  # priority and time, if any
    r"(?P<program>[\w.-]+)\[(?P<pid>\d+)\]: (?P<text>.*)$",
    re.DOTALL,
)
_CLOSE = r'close "(?P<path>.*)" bytes read \d+ written (?P<written>\d+)$'
_SESSION = r"for local user (?P<user>\S+) from \[(?P<peer>[^\]]*)\]$"
_PATTERNS: tuple[tuple[Kind, re.Pattern[str]], ...] = (
    ("open", re.compile(r'^open "(?P<path>.*)" flags (?P<flags>[A-Z,]*)(?: mode \d+)?$')),
    ("forced_close", re.compile(r"^forced " + _CLOSE)),
    ("close", re.compile(r"^" + _CLOSE)),
    ("rename", re.compile(r'^(?:posix-)?rename old "(?P<path>.*)" new "(?P<new>.*)"$')),
    ("symlink", re.compile(r'^symlink old "(?P<path>.*)" new "(?P<new>.*)"$')),
    ("hardlink", re.compile(r'^hardlink old "(?P<path>.*)" new "(?P<new>.*)"$')),
    ("remove", re.compile(r'^remove name "(?P<path>.*)"$')),
    ("mkdir", re.compile(r'^mkdir name "(?P<path>.*)" mode \d+$')),
    ("session_opened", re.compile(r"^session opened " + _SESSION)),
    ("session_closed", re.compile(r"^session closed " + _SESSION)),
    ("refused", re.compile(r"^Refusing denied request: (?P<request>.*)$")),
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """One logged SFTP operation; paths are as the chrooted client sees them."""

    kind: Kind
    pid: int
    path: str = ""
    new_path: str = ""
    writes: bool = False
    written: int | None = None
    user: str = ""
    request: str = ""


def parse(datagram: bytes) -> Transaction | None:
    """The transaction a syslog datagram reports, or None if it reports none."""
    text = datagram.decode("utf-8", errors="replace").rstrip("\x00\r\n")
    header = _HEADER.match(text)
    if header is None:
        return None
    pid, body = int(header["pid"]), header["text"]
    for kind, pattern in _PATTERNS:
        match = pattern.match(body)
        if match is None:
            continue
        found = match.groupdict()
        return Transaction(
            kind=kind,
            pid=pid,
            path=found.get("path") or "",
            new_path=found.get("new") or "",
            writes=kind == "open" and "WRITE" in (found.get("flags") or "").split(","),
            written=int(found["written"]) if found.get("written") else None,
            user=found.get("user") or "",
            request=found.get("request") or "",
        )
    return None


def name_in(path: str, folder: PurePosixPath) -> str | None:
    """The file name ``path`` has directly inside ``folder``, or None."""
    candidate = PurePosixPath(path)
    if candidate.parent == folder and candidate.name not in ("", ".", ".."):
        return candidate.name
    return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Datagram:
    """One message on the socket, with the sender the kernel vouches for.

    ``uid`` and ``pid`` come from ``SCM_CREDENTIALS``, filled in by the kernel
    (the receiver sets ``SO_PASSCRED``), so a sender cannot forge them; None
    when the kernel attached none.
    """

    data: bytes
    uid: int | None
    pid: int | None


def trusted(datagram: Datagram, senders: frozenset[int]) -> bool:
    """Whether the message comes from one of the ``senders`` uids.

    The socket must be writable by the customer's account (the SFTP server
    runs as it), so any local account can also reach it and forge a
    ``forced close`` that would set a genuine upload aside. Only the tenant's
    own account (which has no shell: it runs nothing but the SFTP server) and
    root are believed.
    """
    return datagram.uid is not None and datagram.uid in senders
