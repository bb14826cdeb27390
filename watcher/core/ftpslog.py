"""vsftpd's own transfer log (``vsftpd_log_file``), read for FTPS drop folders.

vsftpd writes one line when a transfer or a command ends, never when it
starts. These are the lines vsftpd 3.0.3 (Debian 12) wrote for a chrooted
account ``jcu`` landing in ``/upload``, with ``strict_ssl_read_eof=YES``; each
line starts with the local time (``Wed Dec  2 06:24:26 2026``), left out here::

    [pid 15737] [jcu] OK UPLOAD: Client "127.0.0.1", "/upload/b.csv", 14 bytes, 0.30Kbyte/sec
    [pid 15843] [jcu] FAIL UPLOAD: Client "127.0.0.1", "/upload/big.csv", 80005 bytes, 154.08K…
    [pid 15737] [jcu] FAIL UPLOAD: Client "127.0.0.1", "/../x.csv", 0.00Kbyte/sec
    [pid 16084] [jcu] OK RENAME: Client "127.0.0.1", "/upload/r.csv.part /upload/r.csv"
    [pid 16084] [jcu] OK DELETE: Client "127.0.0.1", "/upload/r.csv"
    [pid 16084] [jcu] OK MKDIR: Client "127.0.0.1", "/upload/.bak"
    [pid 15600] [jcu] OK LOGIN: Client "127.0.0.1"
    [pid 16247] [jcu] FAIL LOGIN: Client "127.0.0.1"
    [pid 15601] CONNECT: Client "127.0.0.1"

(``…`` stands for ``byte/sec``.)

What each case logged, measured:

- a complete upload: ``OK UPLOAD`` with the bytes of that transfer;
- the data connection closed halfway without a TLS shutdown (the client
  killed), whether or not the control connection stays: ``FAIL UPLOAD`` with
  the bytes received; the partial file stays. (OpenSSL 3 reports such an end
  as an error, so this held with ``strict_ssl_read_eof`` off too);
- ``ABOR`` halfway: ``FAIL UPLOAD`` with the bytes received;
- a resumed upload, ``REST n`` + ``STOR`` or ``APPE``, that completes: ``OK
  UPLOAD`` with the bytes of the resumed part only (not the file's size);
- ``STOR ../x.csv`` or ``STOR /x.csv`` outside the writable folder: ``FAIL
  UPLOAD`` with no byte count, the path as given (``/../x.csv``), no file;
- a data connection whose TLS handshake fails (no session reuse): the file
  is created empty and *nothing* is logged; it is never completed by the log;
- a plain FTP login, or a user not on the allowed list: refused, nothing
  logged; a wrong password: ``FAIL LOGIN``.

Paths are as the chrooted client sees them, made by vsftpd from its working
folder and the argument, not normalised. Every byte below 32, 127 and above
(so every byte of a non-ASCII UTF-8 name) is written as ``?``, and a ``"`` in
a name is written as is: :func:`parse` anchors on the line's end, and
:func:`resolve` finds the real name a ``?`` stands for. The login is the
account's own (vsftpd writes it, not the client), so a line's user can be
believed; a customer can only shape the name inside their own lines. Pure:
:class:`watcher.shell.intake.ftpslog.FtpsLog` reads the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Kind", "Transfer", "matches", "parse", "renamed", "resolve"]

Kind = Literal["upload_ok", "upload_failed", "rename", "delete", "mkdir", "login", "login_failed"]

_LINE = re.compile(
    r"^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \[pid (?P<pid>\d+)\] \[(?P<user>[^\]]*)\] "
    r"(?P<outcome>OK|FAIL) (?P<what>[A-Z]+): Client \"(?P<client>[^\"]*)\"(?P<rest>.*)$"
)
_UPLOAD = re.compile(r'^, "(?P<path>.*)", (?:(?P<bytes>\d+) bytes, )?[\d.]+Kbyte/sec$')
_PATH = re.compile(r'^, "(?P<path>.*)"$')
_KINDS: dict[tuple[str, str], Kind] = {
    ("OK", "UPLOAD"): "upload_ok",
    ("FAIL", "UPLOAD"): "upload_failed",
    ("OK", "RENAME"): "rename",
    ("OK", "DELETE"): "delete",
    ("OK", "MKDIR"): "mkdir",
    ("OK", "LOGIN"): "login",
    ("FAIL", "LOGIN"): "login_failed",
}
# Bytes vsftpd writes as "?": control characters, DEL and everything above.
_HIDDEN = frozenset(range(32)) | frozenset(range(127, 256)) | {ord("?")}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """One line of the log that concerns a drop folder or an account.

    ``path`` is as logged (``?`` for hidden bytes); for a rename it is the
    whole ``"old new"`` text, which :func:`renamed` splits.
    """

    kind: Kind
    pid: int
    user: str
    client: str
    path: str = ""
    size: int | None = None


def parse(line: str) -> Transfer | None:
    """The transfer a log line reports, or None (connections, debug lines, other commands)."""
    match = _LINE.match(line.rstrip("\r\n"))
    if match is None:
        return None
    kind = _KINDS.get((match["outcome"], match["what"]))
    if kind is None:
        return None
    rest, path, size = match["rest"], "", None
    if kind in ("upload_ok", "upload_failed"):
        upload = _UPLOAD.match(rest)
        if upload is None:
            return None
        path, size = upload["path"], int(upload["bytes"]) if upload["bytes"] else None
    elif kind in ("rename", "delete", "mkdir"):
        named = _PATH.match(rest)
        if named is None:
            return None
        path = named["path"]
    return Transfer(
        kind=kind,
        pid=int(match["pid"]),
        user=match["user"],
        client=match["client"],
        path=path,
        size=size,
    )


def matches(logged: str, name: str) -> bool:
    """Whether ``name`` (a real file name) is what vsftpd logs as ``logged``."""
    actual = os.fsencode(name)
    if len(actual) != len(logged):
        return False
    return all(
        byte in _HIDDEN if shown == "?" else byte == ord(shown)
        for shown, byte in zip(logged, actual, strict=True)
    )


def resolve(logged: str, names: Iterable[str]) -> str | None:
    """The one name among ``names`` that vsftpd would log as ``logged``; None if not one."""
    if "?" not in logged:
        return logged
    found = [name for name in names if matches(logged, name)]
    return found[0] if len(found) == 1 else None


def renamed(text: str, folder: str, names: Iterable[str]) -> tuple[str, str] | None:
    """Split a rename's ``"old new"`` text into the two paths.

    Both are absolute paths, so the split is at a ``" /"``; a name holding
    ``" /"`` itself makes several splits possible, and the one whose new name
    is a file in the folder now (as seen at ``folder``) is taken.
    """
    splits = [(text[:i], text[i + 1 :]) for i in range(len(text)) if text.startswith(" /", i)]
    if len(splits) == 1:
        return splits[0]
    known = list(names)
    prefix = folder.rstrip("/") + "/"

    def present(path: str) -> bool:
        name = path[len(prefix) :] if path.startswith(prefix) else None
        return name is not None and "/" not in name and resolve(name, known) in known

    fitting = [(old, new) for old, new in splits if present(new)]
    return fitting[0] if len(fitting) == 1 else None
