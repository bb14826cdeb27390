"""``watcher status``: what each tenant is waiting for, from the outside.

It reads, without disturbing the service: the journal (read-only) for the
last batch, unfinished batches, pending rows and the outbox; the status file
the running service rewrites every second for files being uploaded, settling
or waiting for their batch; the lock on the state folder to tell whether
the service runs at all.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from typing import TYPE_CHECKING, Any

from watcher.errors import StateError
from watcher.shell.journal import Journal

if TYPE_CHECKING:
    from watcher.config import Config


def running(config: Config) -> bool:
    """Whether a service holds the state folder's lock."""
    try:
        fd = os.open(config.service.state_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def gather(config: Config) -> dict[str, Any]:
    """Everything ``watcher status`` shows, as one JSON-ready value.

    Raises:
        StateError: the state folder cannot be read by this user.
    """
    try:
        return _gather(config)
    except PermissionError as exc:
        raise StateError(
            f"cannot read the state folder {config.service.state_dir} ({exc.strerror}): run "
            "watcher status as the service's user, root, or a member of its group"
        ) from exc


def _gather(config: Config) -> dict[str, Any]:
    alive = running(config)
    live: dict[str, Any] = {}
    status_file = config.service.state_dir / "status.json"
    if alive and status_file.exists():
        live = json.loads(status_file.read_text())
    journal_path = config.service.state_dir / "journal.sqlite"
    journal = Journal(journal_path) if journal_path.exists() else None
    try:
        tenants = {t.name: _tenant(config, t.name, journal, live) for t in config.tenants}
    finally:
        if journal is not None:
            journal.close()
    return {
        "running": alive,
        "pid": live.get("pid"),
        "status_age": round(time.time() - live["updated_at"], 1) if live else None,
        "tenants": tenants,
    }


def _tenant(
    config: Config, name: str, journal: Journal | None, live: dict[str, Any]
) -> dict[str, Any]:
    tenant = config.tenant(name)
    now_live = live.get("tenants", {}).get(name, {})
    result: dict[str, Any] = {
        "drop_dir": str(tenant.drop_dir),
        "folder_ok": now_live.get("folder_ok", tenant.drop_dir.is_dir()),
        "files": now_live.get("files", []),
        "batch_in": now_live.get("batch_in"),
        "batch_running": now_live.get("batch_running", False),
        "schema": now_live.get("schema"),
        "schema_on_disk": now_live.get("schema_on_disk"),
        "last_batch": None,
        "unfinished_batches": 0,
        "pending_rows": 0,
        "pending_reason": None,
        "outbox": {"waiting": 0, "rejected": 0},
    }
    if journal is None:
        return result
    last = journal.last_batch(name)
    if last is not None:
        counts = [journal.counts(f.id) for f in journal.files(last.id)]
        result["last_batch"] = {
            "id": last.id,
            "finished_at": last.finished_at,
            "files": len(counts),
            "rows": sum(c.total for c in counts),
            "imported": sum(c.imported for c in counts),
            "failed": sum(c.failed for c in counts),
        }
    unfinished = journal.unfinished_batches(name)
    result["unfinished_batches"] = len(unfinished)
    result["pending_rows"] = sum(
        journal.counts(f.id).pending for b in unfinished for f in journal.files(b.id)
    )
    stops = [found for b in unfinished if (found := journal.stopped(b.id)) is not None]
    if stops:
        reason, since = min(stops, key=lambda stop: stop[1])
        result["pending_reason"] = {"reason": reason, "since": since}
    result["outbox"] = {
        "waiting": journal.message_count("queued", tenant=name),
        "rejected": journal.message_count("rejected", tenant=name),
    }
    return result
