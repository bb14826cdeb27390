"""A tenant's page: its status, its recent batches and checks, its rows per day.

Read from the journal (read-only) beside :func:`~watcher.shell.web.status.gather`,
in a fixed number of queries whatever the tenant's history; counts and file
names only, never a value from a file.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from watcher.shell.journal import Journal
from watcher.shell.web.status import gather

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.config import Config
    from watcher.core.documents import TenantDetail
    from watcher.shell.statedir import StateDir

__all__ = ["tenant_detail"]


def tenant_detail(
    config: Config,
    state: StateDir,
    name: str,
    *,
    days: int = 30,
    clock: Callable[[], float] = time.time,
) -> TenantDetail:
    """A tenant's page: its status, its last 50 batches and 20 checks, its rows per day.

    Raises:
        KeyError: no tenant is called ``name``.
        StateError: the state folder cannot be read by this user.
    """
    now = clock()
    status = gather(config, state, only=(config.tenant(name).name,), clock=lambda: now)
    detail: TenantDetail = {
        "name": name,
        "status": status["tenants"][name],
        "recent": [],
        "checks": [],
        "daily": [],
    }
    if not state.has_journal():
        return detail
    journal = Journal(state.journal, read_only=True)
    try:
        for past in journal.history.recent(name):
            c = past.counts
            detail["recent"].append({
                "id": past.id, "state": str(past.state), "created_at": past.created_at,
                "received_at": past.received_at or past.created_at,
                "finished_at": past.finished_at, "files": list(past.files), "rows": c.total,
                "imported": c.imported, "unchanged": c.unchanged, "failed": c.failed,
                "pending": c.pending, "missing": c.missing, "deactivated": c.deactivated,
                "codes": list(past.codes),
            })  # fmt: skip
        detail["checks"] = [
            {"name": c.name, "checked_at": c.checked_at, "rows": c.rows, "failed": c.failed,
             "code": c.code}
            for c in journal.checks.recent(name)
        ]  # fmt: skip
        detail["daily"] = [
            {"day": d.day, "imported": d.imported, "unchanged": d.unchanged, "failed": d.failed}
            for d in journal.history.daily(name, days=days, now=now)
        ]
    finally:
        journal.close()
    return detail
