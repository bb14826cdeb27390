"""The status document: written by the running service, read by ``watcher status``.

The service rewrites ``STATE/status.json`` at most once a second with what each tenant is
waiting for (a :class:`~watcher.core.documents.LiveStatus`, through :class:`StatusFile`);
``watcher status``, the page and scripts read it with what the journal (read-only) says of
the batches and the outbox, and tell from the state folder's lock whether the service runs
(:func:`gather`; a tenant's page adds :mod:`.detail`). The shapes are in
:mod:`watcher.core.documents`; reading every tenant costs a fixed number of queries.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, TypeAlias, TypeVar

from watcher.core.names import shown
from watcher.core.signals import LaneKind
from watcher.core.states import MessageState, Safeguard
from watcher.errors import StateError
from watcher.shell.files import replace_file
from watcher.shell.journal import Journal

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config
    from watcher.core.documents import (
        CheckLane,
        FileStatus,
        HeldBatch,
        Importing,
        LastBatch,
        LiveStatus,
        LiveTenant,
        Status,
        TenantStatus,
    )
    from watcher.core.readiness import UploadState
    from watcher.core.records import BatchRecord
    from watcher.shell.intake.lane import LaneSnapshot
    from watcher.shell.journal.history import Past
    from watcher.shell.running.schemas import InForce
    from watcher.shell.statedir import StateDir

__all__ = ["CHECKS_SPAN", "MAIL_LATE", "StatusFile", "gather", "live_tenant"]

_T = TypeVar("_T")
_Clock: TypeAlias = "Callable[[], float]"
_LONGEST_BACKOFF = 30.0
_QUIET = 5.0
MAIL_LATE = 15 * 60  # seconds mail may wait before the tenant turns amber (SMTP down)
CHECKS_SPAN = 7 * 86400  # the check lane's activity shown: the last week


class StatusFile:
    """The running service's side: write the status file, at most once a second.

    A failed write means the state folder cannot be written: it is logged
    once, tried again less and less often (a full disk must not turn the loop
    into a busy one), and the service stops reporting itself healthy.
    """

    def __init__(
        self, state: StateDir, log: FilteringBoundLogger, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = state.status
        self.clock = clock
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

    def write(
        self, tenants: dict[str, LiveTenant], now: float, *, refused: str | None = None
    ) -> bool:
        """Write the document (``refused``: why a changed configuration was); whether it worked."""
        document: LiveStatus = {"pid": os.getpid(), "updated_at": self.clock(), "tenants": tenants}
        document["config_refused"] = refused
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
    lanes: Sequence[LaneSnapshot],
    now: float,
    *,
    in_force: InForce | None,
    refused: list[str] | None,
    running: bool,
    importing: Importing | None = None,
) -> LiveTenant:
    """What the running service writes of one tenant: each file and what it waits for.

    ``lanes``: the import lane first, then the check lane (its files under ``check/``).
    """
    files: list[FileStatus] = []
    for lane in lanes:
        blocked = lane.blocked if in_force is None else frozenset()
        files += [
            {
                "name": shown(lane.prefix + f.name),
                "state": _waiting_for(f, lane.settle, blocked=f.name in blocked),
            }
            for f in lane.uploads
        ]
        waiting = "in the next batch" if lane.kind is LaneKind.IMPORT else "being checked"
        files += [{"name": shown(lane.prefix + n), "state": waiting} for n in lane.waiting]
    imports = lanes[0]
    deadline = imports.window_closes
    return {
        "folder_ok": imports.folder_ok,
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
        "importing": importing,
    }


def _waiting_for(upload: UploadState, settle: float, *, blocked: bool) -> str:
    if blocked:
        return "blocked: no valid schema"
    if upload.interrupted:
        return "interrupted"
    if upload.writing or not upload.complete:
        return "uploading"
    return "settling" if upload.quiet_for < settle else "checking"


def gather(
    config: Config, state: StateDir, *, only: Sequence[str] | None = None, clock: _Clock = time.time
) -> Status:
    """Everything ``watcher status`` shows (of ``only`` these tenants), disturbing nothing.

    Raises:
        StateError: the state folder cannot be read by this user.
    """
    try:
        return _gather(config, state, only, clock())
    except PermissionError as exc:
        raise StateError(
            f"cannot read the state folder {state.root} ({exc.strerror}): run "
            "watcher status as the service's user, root, or a member of its group"
        ) from exc


def _gather(config: Config, state: StateDir, only: Sequence[str] | None, now: float) -> Status:
    alive = state.locked()
    live: LiveStatus | None = None
    if alive and state.status.exists():
        live = json.loads(state.status.read_text())
    wanted = [t for t in config.tenants if only is None or t.name in only]
    tenants = {t.name: _empty(t.name, t.drop_dir, live) for t in wanted}
    if state.has_journal():
        journal = Journal(state.journal, read_only=True)
        try:
            _from_journal(journal, tenants, now)
            if state.database is not None:
                _owners(journal, tenants)
        finally:
            journal.close()
    return {
        "running": alive,
        "pid": live["pid"] if live else None,
        "status_age": round(now - live["updated_at"], 1) if live else None,
        "instance": state.instance,
        "tenants": tenants,
        "config_refused": live.get("config_refused") if live else None,
    }


def _owners(journal: Journal, tenants: dict[str, TenantStatus]) -> None:
    """Which instance owns each tenant, with a shared database."""
    for name, lease in _mine(journal.leases.owners(), tenants):
        tenants[name]["owner"] = {
            "instance": lease.instance,
            "host": lease.host,
            "live": lease.live,
            "expires_in": round(lease.expires_at - lease.now, 1),
        }


def _empty(name: str, drop_dir: Path, live: LiveStatus | None) -> TenantStatus:
    known = live["tenants"].get(name) if live else None
    return {
        "drop_dir": str(drop_dir),
        "owner": None,
        "folder_ok": known["folder_ok"] if known else drop_dir.is_dir(),
        "files": known["files"] if known else [],
        "batch_in": known["batch_in"] if known else None,
        "batch_running": known["batch_running"] if known else False,
        "schema": known["schema"] if known else None,
        "schema_on_disk": known["schema_on_disk"] if known else None,
        "importing": known.get("importing") if known else None,
        "last_batch": None,
        "unfinished_batches": 0,
        "pending_rows": 0,
        "pending_reason": None,
        "held": [],
        "outbox": {"waiting": 0, "rejected": 0, "since": None, "error": None, "late": False},
        "checks": {"files": 0, "clean": 0, "last": None},
    }


def _from_journal(journal: Journal, tenants: dict[str, TenantStatus], now: float) -> None:
    """Fill in what the journal knows: a few queries for every tenant at once, or for one."""
    one = next(iter(tenants)) if len(tenants) == 1 else None
    for name, past in _mine(journal.history.last_done(one), tenants):
        tenants[name]["last_batch"] = _last(journal, past)
    for name, pending in _mine(journal.history.pending(one), tenants):
        tenants[name]["pending_rows"] = pending
    unfinished: dict[str, list[BatchRecord]] = {}
    for batch in journal.batches.unfinished(one):
        if batch.tenant in tenants:
            unfinished.setdefault(batch.tenant, []).append(batch)
    for name, batches in unfinished.items():
        _unfinished(journal, tenants[name], batches)
    boxes = journal.messages.counts_by_tenant((MessageState.QUEUED, MessageState.REJECTED), one)
    waiting = journal.messages.oldest_waiting(one)
    for name, box in _mine(boxes, tenants):
        since, error = waiting.get(name, (None, None))
        tenants[name]["outbox"] = {
            "waiting": box.get(MessageState.QUEUED, 0),
            "rejected": box.get(MessageState.REJECTED, 0),
            "since": since,
            "error": error,
            "late": since is not None and now - since > MAIL_LATE,
        }
    for name, lately in _mine(journal.checks.lately(now - CHECKS_SPAN, one), tenants):
        lane: CheckLane = {"files": lately.files, "clean": lately.clean, "last": lately.last}
        tenants[name]["checks"] = lane


def _mine(found: dict[str, _T], tenants: dict[str, TenantStatus]) -> list[tuple[str, _T]]:
    """The entries of ``found`` that concern the tenants asked for."""
    return [(name, value) for name, value in found.items() if name in tenants]


def _unfinished(journal: Journal, tenant: TenantStatus, batches: list[BatchRecord]) -> None:
    tenant["unfinished_batches"] = len(batches)
    tenant["held"] = [_held(journal, b) for b in batches if b.safeguard is Safeguard.HELD]
    stops = [b.stopped for b in batches if b.stopped is not None]
    if stops:
        reason, since = min(stops, key=lambda stop: stop[1])
        tenant["pending_reason"] = {"reason": reason, "since": since}


def _last(journal: Journal, past: Past) -> LastBatch:
    counts, files = past.counts, len(past.files)
    if not past.files:  # finished before batches kept their counts: read them
        view = journal.batches.view(past.id)
        counts, files = view.counts, len(view.files)
    return {
        "id": past.id, "finished_at": past.finished_at, "files": files, "rows": counts.total,
        "imported": counts.imported, "unchanged": counts.unchanged, "failed": counts.failed,
        "missing": counts.missing, "deactivated": counts.deactivated,
    }  # fmt: skip


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
        "reason": changes.hold if changes else None,
        "deactivate": changes.deactivate if changes else 0,
        "missing": changes.missing if changes else 0,
    }
