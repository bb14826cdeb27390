"""A full snapshot's missing users: the known users that no row of the batch names.

All files of the batch are one snapshot: a user named by any row of any of
them (a valid row, or one that failed validation: a user whose email is
wrong has not left) is present. A batch with a file that failed as a whole
(its headers did not match, say) names nobody for that file, so nobody is
found missing: an unreadable file is not an empty roster.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.changes import hold_reason, missing_users, user_key, user_keys
from watcher.shell.journal import MissingSet
from watcher.shell.pipeline.validating import validate_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.config import TenantConfig
    from watcher.core.changes import ChangeSummary, HoldReason
    from watcher.core.records import BatchView, FileRecord
    from watcher.core.schema import Schema
    from watcher.core.validation import ValidationReport
    from watcher.shell.pipeline.context import BatchContext

__all__ = ["find_missing", "hold_for", "idents", "with_missing"]


def find_missing(
    ctx: BatchContext,
    tenant: TenantConfig,
    view: BatchView,
    schema_of: Callable[[FileRecord], Schema],
    *,
    reports: dict[str, ValidationReport],
    changes: ChangeSummary,
) -> tuple[MissingSet | None, ChangeSummary]:
    """Who the batch's snapshot lacks, and ``changes`` with the snapshot's counts.

    ``view`` must be read after validation. None (and ``changes`` as it
    was) when a file failed as a whole: the snapshot is incomplete.
    """
    broken = [f.record.name for f in view.files if f.record.code is not None]
    if broken or not view.files:
        ctx.log.warning("snapshot.incomplete", files=broken)
        return None, changes
    present: list[pl.Series] = []
    rows = 0
    for file in view.files:
        record = file.record
        if record.id not in reports:  # validated by a run that stopped: read it again
            reports[record.id] = validate_file(ctx, record, schema_of(record))
        report = reports[record.id]
        present.append(user_keys(report.api_rows(failed=True), user_key(schema_of(record))))
        rows += report.rows_total
    known = ctx.journal.users.every(tenant.name, tenant.target)
    missing = missing_users(known, pl.concat(present))
    found = MissingSet(
        tenant=tenant.name,
        target=tenant.target,
        deactivate=tenant.missing == "deactivate",
        users=missing.select("key", "ident").rows(),
    )
    return found, with_missing(tenant, changes, rows=rows, missing=missing.height)


def with_missing(
    tenant: TenantConfig, changes: ChangeSummary, *, rows: int, missing: int
) -> ChangeSummary:
    """``changes`` of a full snapshot of ``rows`` rows that leaves ``missing`` users out."""
    deactivate = missing if tenant.missing == "deactivate" else 0
    return dataclasses.replace(changes, snapshot=rows, missing=missing, deactivate=deactivate)


def hold_for(tenant: TenantConfig, changes: ChangeSummary) -> HoldReason | None:
    """Why the tenant's safeguard would hold a batch doing ``changes``; None if it would not."""
    return hold_reason(
        changes,
        changed_share=tenant.safeguard_changed,
        min_known=tenant.safeguard_min_known,
        min_rows=tenant.safeguard_min_rows,
    )


def idents(tenant: TenantConfig, rows: pl.DataFrame) -> dict[int, str]:
    """Each row's identifying fields as JSON, kept with its fingerprint; none without an API."""
    if tenant.api is None:
        return {}
    names = [n for n in tenant.api.identify if n in rows.columns]
    if not names or rows.is_empty():
        return {}
    encoded = rows.select("row", pl.struct(names).struct.json_encode().alias("ident"))
    return dict(encoded.iter_rows())
