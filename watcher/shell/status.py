"""The status document: written by the running service, read by ``watcher status``.

The service rewrites ``STATE/status.json`` at most once a second with what
each tenant is waiting for (:class:`LiveStatus`, through :class:`StatusFile`);
``watcher status`` reads it, adds what the journal (read-only) says of the
batches and the outbox, and tells from the state folder's lock whether the
service runs (:func:`gather`, giving a :class:`Status`). Both shapes are here.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, TypedDict

from watcher.core.names import shown
from watcher.core.states import MessageState, Safeguard
from watcher.errors import StateError
from watcher.shell.files import replace_file
from watcher.shell.journal import Journal

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config
    from watcher.core.readiness import UploadState
    from watcher.core.records import BatchRecord
    from watcher.shell.intake import TenantIntake
    from watcher.shell.schemas import InForce
    from watcher.shell.statedir import StateDir

__all__ = [
    "FileStatus",
    "HeldBatch",
    "LastBatch",
    "LiveStatus",
    "LiveTenant",
    "Outbox",
    "PendingReason",
    "SchemaInForce",
    "Status",
    "StatusFile",
    "TenantStatus",
    "gather",
    "live_tenant",
]

_LONGEST_BACKOFF = 30.0
_QUIET = 5.0


class FileStatus(TypedDict):
    """A file the service tracks, and what it waits for."""

    name: str
    state: str


class SchemaInForce(TypedDict):
    """The schema a tenant's files are validated with."""

    version: str
    digest: str
    path: str


class LiveTenant(TypedDict):
    """What the running service knows of one tenant."""

    folder_ok: bool
    files: list[FileStatus]
    batch_in: float | None
    batch_running: bool
    schema: SchemaInForce | None
    schema_on_disk: list[str] | None


class LiveStatus(TypedDict):
    """The status file's content."""

    pid: int
    updated_at: float
    tenants: dict[str, LiveTenant]


class LastBatch(TypedDict):
    """A tenant's most recent finished batch."""

    id: str
    finished_at: float | None
    files: int
    rows: int
    imported: int
    unchanged: int
    failed: int


class HeldBatch(TypedDict):
    """A batch the safeguard holds for an operator, and why."""

    id: str
    since: float
    files: int
    rows: int
    changed: int
    known: int
    columns: list[str]


class PendingReason(TypedDict):
    """Why rows are pending, and since when."""

    reason: str
    since: float


class Outbox(TypedDict):
    """A tenant's reports not sent."""

    waiting: int
    rejected: int


class TenantStatus(LiveTenant):
    """Everything ``watcher status`` shows of one tenant."""

    drop_dir: str
    last_batch: LastBatch | None
    unfinished_batches: int
    pending_rows: int
    pending_reason: PendingReason | None
    held: list[HeldBatch]
    outbox: Outbox


class Status(TypedDict):
    """Everything ``watcher status`` shows."""

    running: bool
    pid: int | None
    status_age: float | None
    tenants: dict[str, TenantStatus]


class StatusFile:
    """The running service's side: write the status file, at most once a second.

    A failed write means the state folder cannot be written: it is logged
    once, tried again less and less often (a full disk must not turn the loop
    into a busy one), and the service stops reporting itself healthy.
    """

    def __init__(self, state: StateDir, log: FilteringBoundLogger) -> None:
        self.path = state.status
        self.log = log
        self.dirty = True
        self._written = float("-inf")
        # Seconds between tries while the file cannot be written; 0 while it can.
        self._backoff = 0.0
        self._retry_at = float("-inf")

    def deadline(self) -> float | None:
        """When the next write is due, if one is."""
        if self._backoff:
            return self._retry_at
        return self._written + 1.0 if self.dirty else None

    def due(self, now: float) -> bool:
        """Whether a write is due now (something changed, or it has been quiet for long)."""
        if self._backoff:
            return now >= self._retry_at
        quiet = now - self._written
        return quiet >= 1.0 and (self.dirty or quiet >= _QUIET)

    def healthy(self) -> bool:
        """Whether the last write worked."""
        return not self._backoff

    def write(self, tenants: dict[str, LiveTenant], now: float) -> bool:
        """Write the document; whether it worked."""
        document: LiveStatus = {"pid": os.getpid(), "updated_at": time.time(), "tenants": tenants}
        try:
            replace_file(self.path.parent, self.path.name, json.dumps(document, indent=1).encode())
        except OSError as exc:
            if not self._backoff:
                self.log.error("service.state_unwritable", path=str(self.path), error=exc.strerror)
            self._backoff = min(self._backoff * 2 or 1.0, _LONGEST_BACKOFF)
            self._retry_at = now + self._backoff
            return False
        if self._backoff:
            self.log.info("service.state_writable", path=str(self.path))
        self._backoff = 0.0
        self._written = now
        self.dirty = False
        return True


def live_tenant(
    lanes: Sequence[TenantIntake],
    now: float,
    *,
    in_force: InForce | None,
    refused: list[str] | None,
    running: bool,
) -> LiveTenant:
    """What the running service writes of one tenant: each file and what it waits for.

    ``lanes``: the import lane first, then the check lane (its files under ``check/``).
    """
    files: list[FileStatus] = []
    for lane in lanes:
        settle = lane.service.settle_time
        blocked = lane.blocked if in_force is None else set()
        files += [
            {
                "name": shown(lane.prefix + f.name),
                "state": _waiting_for(f, settle, blocked=f.name in blocked),
            }
            for f in lane.tracker.states(now)
        ]
        waiting = "in the next batch" if lane.lane == "import" else "being checked"
        files += [{"name": shown(lane.prefix + n), "state": waiting} for n in lane.batcher.waiting]
    intake = lanes[0]
    deadline = intake.batcher.deadline()
    return {
        "folder_ok": intake.folder_ok,
        "files": files,
        "batch_in": None if deadline is None else max(0.0, round(deadline - now, 1)),
        "batch_running": running,
        "schema": None
        if in_force is None
        else {
            "version": in_force.schema.label,
            "digest": in_force.schema.digest,
            "path": str(in_force.path),
        },
        "schema_on_disk": refused,
    }


def _waiting_for(upload: UploadState, settle: float, *, blocked: bool) -> str:
    if blocked:
        return "blocked: no valid schema"
    if upload.interrupted:
        return "interrupted"
    if upload.writing or not upload.complete:
        return "uploading"
    return "settling" if upload.quiet_for < settle else "checking"


def gather(config: Config, state: StateDir) -> Status:
    """Everything ``watcher status`` shows, without disturbing the service.

    Raises:
        StateError: the state folder cannot be read by this user.
    """
    try:
        return _gather(config, state)
    except PermissionError as exc:
        raise StateError(
            f"cannot read the state folder {state.root} ({exc.strerror}): run "
            "watcher status as the service's user, root, or a member of its group"
        ) from exc


def _gather(config: Config, state: StateDir) -> Status:
    alive = state.locked()
    live: LiveStatus | None = None
    if alive and state.status.exists():
        live = json.loads(state.status.read_text())
    journal = Journal(state.journal, read_only=True) if state.journal.exists() else None
    try:
        tenants = {t.name: _tenant(t.name, t.drop_dir, journal, live) for t in config.tenants}
    finally:
        if journal is not None:
            journal.close()
    return {
        "running": alive,
        "pid": live["pid"] if live else None,
        "status_age": round(time.time() - live["updated_at"], 1) if live else None,
        "tenants": tenants,
    }


def _tenant(
    name: str, drop_dir: Path, journal: Journal | None, live: LiveStatus | None
) -> TenantStatus:
    known = live["tenants"].get(name) if live else None
    result: TenantStatus = {
        "drop_dir": str(drop_dir),
        "folder_ok": known["folder_ok"] if known else drop_dir.is_dir(),
        "files": known["files"] if known else [],
        "batch_in": known["batch_in"] if known else None,
        "batch_running": known["batch_running"] if known else False,
        "schema": known["schema"] if known else None,
        "schema_on_disk": known["schema_on_disk"] if known else None,
        "last_batch": None,
        "unfinished_batches": 0,
        "pending_rows": 0,
        "pending_reason": None,
        "held": [],
        "outbox": {"waiting": 0, "rejected": 0},
    }
    if journal is None:
        return result
    last = journal.batches.last_done(name)
    if last is not None:
        view = journal.batches.view(last.id)
        counts = view.counts
        result["last_batch"] = {
            "id": last.id,
            "finished_at": last.finished_at,
            "files": len(view.files),
            "rows": counts.total,
            "imported": counts.imported,
            "unchanged": counts.unchanged,
            "failed": counts.failed,
        }
    unfinished = journal.batches.unfinished(name)
    result["unfinished_batches"] = len(unfinished)
    result["pending_rows"] = sum(journal.batches.view(b.id).counts.pending for b in unfinished)
    result["held"] = [_held(journal, b) for b in unfinished if b.safeguard is Safeguard.HELD]
    stops = [b.stopped for b in unfinished if b.stopped is not None]
    if stops:
        reason, since = min(stops, key=lambda stop: stop[1])
        result["pending_reason"] = {"reason": reason, "since": since}
    result["outbox"] = {
        "waiting": journal.messages.count(MessageState.QUEUED, tenant=name),
        "rejected": journal.messages.count(MessageState.REJECTED, tenant=name),
    }
    return result


def _held(journal: Journal, batch: BatchRecord) -> HeldBatch:
    view = journal.batches.view(batch.id)
    changes = batch.changes
    return {
        "id": batch.id,
        "since": batch.created_at,
        "files": len(view.files),
        "rows": view.counts.total,
        "changed": changes.changed if changes else 0,
        "known": changes.known if changes else 0,
        "columns": [name for name, _ in changes.columns] if changes else [],
    }
