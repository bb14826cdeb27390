"""What watchdog events and server log lines (SFTP, FTPS) mean for the files of a drop folder.

Both arrive raw in the shell (:mod:`watcher.shell.intake.watching`,
:mod:`watcher.shell.intake.logsocket`); here they become typed values the tracker
(:mod:`watcher.core.readiness`) understands: a :class:`Change` per event, a
:class:`Heard` per transaction. Pure: an event or a transaction in, values
out, and the audit event to log as a value too (:data:`audit`), so the shell
only carries things out.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from typing import TYPE_CHECKING, Literal

from watcher.core.ftpslog import renamed, resolve
from watcher.core.sftplog import name_in

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import PurePosixPath

    from watchdog.events import FileSystemEvent

    from watcher.core.ftpslog import Transfer
    from watcher.core.readiness import Signal
    from watcher.core.sftplog import Transaction

__all__ = ["Audit", "Change", "Heard", "LaneKind", "audit", "changes", "hear", "hear_ftps"]

_SIGNALS: dict[str, Signal] = {
    "created": "created",
    "modified": "written",
    "closed": "closed",
}


class LaneKind(enum.StrEnum):
    """A tenant's two lanes: its drop folder's uploads, imported; its ``check/``, only checked."""

    IMPORT = "import"
    CHECK = "check"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """Something happened to ``name`` in one of ``tenant``'s lanes (its drop or check folder)."""

    tenant: str
    name: str
    signal: Signal | None
    gone: bool = False
    lane: LaneKind = LaneKind.IMPORT


def changes(
    tenant: str, folder: str, event: FileSystemEvent, lane: LaneKind = LaneKind.IMPORT
) -> list[Change]:
    """What a watchdog event means for the files directly in ``folder``.

    Opens and closes without writing are ignored: the service's own reads
    cause them. A move is the source going away and the destination arriving.
    """
    if event.is_directory:
        return []
    found: list[Change] = []
    source = os.fsdecode(event.src_path)
    if os.path.dirname(source) == folder:  # noqa: PTH120 - event paths are strings
        name = os.path.basename(source)  # noqa: PTH119
        if event.event_type in ("deleted", "moved"):
            found.append(Change(tenant=tenant, name=name, signal=None, gone=True, lane=lane))
        elif event.event_type in _SIGNALS:
            signal = _SIGNALS[event.event_type]
            found.append(Change(tenant=tenant, name=name, signal=signal, lane=lane))
    if event.event_type == "moved":
        destination = os.fsdecode(event.dest_path)
        if os.path.dirname(destination) == folder:  # noqa: PTH120
            arrived = os.path.basename(destination)  # noqa: PTH119
            found.append(Change(tenant=tenant, name=arrived, signal="moved_in", lane=lane))
    return found


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Audit:
    """A log event to write: its level, name and fields."""

    level: Literal["info", "warning"]
    event: str
    fields: Mapping[str, object]


class _Audits:
    """Builds :class:`Audit` values the way a logger is called: ``audit.info("a.b", k=v)``.

    Written like log calls so the event catalogue check finds them as it
    finds every other event.
    """

    @staticmethod
    def info(event: str, **fields: object) -> Audit:
        return Audit(level="info", event=event, fields=fields)

    @staticmethod
    def warning(event: str, **fields: object) -> Audit:
        return Audit(level="warning", event=event, fields=fields)


audit = _Audits()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Heard:
    """What one SFTP transaction means for the tracker, and the audit event it gets.

    ``notes`` are signals for names; ``forget`` names stop being tracked;
    ``observe`` names should be looked at now (a file renamed in);
    ``writer`` records (name, pid) as the file's writer, or clears it with a
    pid of None.
    """

    notes: tuple[tuple[str, Signal], ...] = ()
    forget: tuple[str, ...] = ()
    observe: tuple[str, ...] = ()
    writer: tuple[str, int | None] | None = None
    audit: Audit | None = None


def hear(
    t: Transaction, folder: PurePosixPath | None, writers: Mapping[str, int], tenant: str
) -> Heard:
    """What transaction ``t`` means for the drop folder seen by the client as ``folder``.

    ``writers`` maps the names being uploaded to the pid of their SFTP
    session: a close counts only from the session that opened the file.
    """
    name = name_in(t.path, folder) if folder is not None else None
    new_name = name_in(t.new_path, folder) if folder is not None and t.new_path else None
    fields = {"tenant": tenant, "pid": t.pid}
    match t.kind:
        case "open" if t.writes and name is not None:
            return Heard(
                notes=((name, "sftp_open"),),
                writer=(name, t.pid),
                audit=audit.info("sftp.upload_started", file=name, **fields),
            )
        case "close" if name is not None and writers.get(name) == t.pid:
            return Heard(
                notes=((name, "sftp_close"),),
                writer=(name, None),
                audit=audit.info("sftp.upload_finished", file=name, bytes=t.written, **fields),
            )
        case "forced_close" if name is not None and writers.get(name) == t.pid:
            return Heard(
                notes=((name, "sftp_forced_close"),),
                writer=(name, None),
                audit=audit.warning(
                    "sftp.upload_interrupted", file=name, bytes=t.written, **fields
                ),
            )
        case "rename":
            return Heard(
                forget=(name,) if name is not None else (),
                notes=((new_name, "sftp_renamed_in"),) if new_name is not None else (),
                observe=(new_name,) if new_name is not None else (),
                audit=audit.info(
                    "sftp.renamed", file=new_name or t.new_path, old=name or t.path, **fields
                ),
            )
        case "symlink" | "hardlink":
            return Heard(
                audit=audit.warning(
                    "sftp.link_attempt",
                    kind=t.kind,
                    target=t.path,
                    link=new_name or t.new_path,
                    **fields,
                )
            )
        case "refused":
            return Heard(audit=audit.warning("sftp.request_refused", request=t.request, **fields))
        case "remove" if name is not None:
            return Heard(forget=(name,), audit=audit.info("sftp.removed", file=name, **fields))
        case "session_opened":
            return Heard(audit=audit.info("sftp.session_opened", user=t.user, **fields))
        case "session_closed":
            return Heard(audit=audit.info("sftp.session_closed", user=t.user, **fields))
        case _:
            return Heard()


def hear_ftps(
    t: Transfer, folder: PurePosixPath, tenant: str, names: Callable[[], Iterable[str]]
) -> Heard:
    """What a line of vsftpd's log means for the drop folder seen by the client as ``folder``.

    ``names`` lists the folder's entries, read only when a logged name hides
    bytes (``?``) and the real one must be found.
    """
    fields = {"tenant": tenant, "pid": t.pid}

    def here(path: str) -> str | None:
        logged = name_in(path, folder)
        if logged is None or "?" not in logged:
            return logged
        return resolve(logged, names())

    match t.kind:
        case "upload_ok" | "upload_failed":
            name = here(t.path)
            shown = name or t.path
            if t.kind == "upload_ok":
                return Heard(
                    notes=((name, "ftps_uploaded"),) if name is not None else (),
                    observe=(name,) if name is not None else (),
                    audit=audit.info("ftps.upload_finished", file=shown, bytes=t.size, **fields),
                )
            return Heard(
                notes=((name, "ftps_failed"),) if name is not None else (),
                audit=audit.warning("ftps.upload_failed", file=shown, bytes=t.size, **fields),
            )
        case "rename":
            split = renamed(t.path, str(folder), names())
            old, new = split if split is not None else (t.path, "")
            old_name, new_name = here(old), here(new) if new else None
            return Heard(
                forget=(old_name,) if old_name is not None else (),
                notes=((new_name, "sftp_renamed_in"),) if new_name is not None else (),
                observe=(new_name,) if new_name is not None else (),
                audit=audit.info(
                    "ftps.renamed", file=new_name or new or t.path, old=old_name or old, **fields
                ),
            )
        case "delete":
            name = here(t.path)
            return Heard(
                forget=(name,) if name is not None else (),
                audit=audit.info("ftps.removed", file=name or t.path, **fields),
            )
        case "mkdir":
            return Heard(audit=audit.info("ftps.folder_made", path=t.path, **fields))
        case "login":
            return Heard(audit=audit.info("ftps.login", user=t.user, client=t.client, **fields))
        case "login_failed":
            return Heard(
                audit=audit.warning("ftps.login_failed", user=t.user, client=t.client, **fields)
            )
