"""What a checked file would do if it were imported: the change preview of the check lane.

The same comparison an import makes (:mod:`watcher.core.changes`): each
valid row against what is confirmed for its user and target, the missing
users of a full snapshot, the safeguard's verdict. Read only: nothing is
journaled, no row state moves. A file alone is the snapshot here; an import
that batches it with others compares them together.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from watcher.core.changes import (
    compare,
    fingerprints,
    missing_users,
    summarise,
    user_key,
    user_keys,
)
from watcher.shell.pipeline.snapshots import hold_for, with_missing

if TYPE_CHECKING:
    from watcher.config import TenantConfig
    from watcher.core.changes import ChangeSummary
    from watcher.core.schema import Schema
    from watcher.core.validation import ValidationReport
    from watcher.shell.pipeline.context import BatchContext

__all__ = ["preview_changes"]


def preview_changes(
    ctx: BatchContext, tenant: TenantConfig, report: ValidationReport, schema: Schema
) -> ChangeSummary | None:
    """What importing the file now would change, with why it would be held; None if unreadable."""
    if report.file_errors or report.table is None:
        return None
    key = user_key(schema)
    prints = fingerprints(report.api_rows(), key)
    users = ctx.journal.users
    known = users.known(tenant.name, tenant.target, prints["key"].to_list())
    compared = compare(prints, known, now=ctx.clock(), resend_after=tenant.resend_unchanged_after)
    summary = summarise(compared, known=users.count(tenant.name, tenant.target), shown=None)
    if tenant.snapshot == "full":
        present = user_keys(report.api_rows(failed=True), key)
        missing = missing_users(users.every(tenant.name, tenant.target), present).height
        summary = with_missing(tenant, summary, rows=report.rows_total, missing=missing)
    return dataclasses.replace(summary, hold=hold_for(tenant, summary))
