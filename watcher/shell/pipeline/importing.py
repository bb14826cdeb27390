"""A batch's import step: validate, compare with what users have, hold or send.

1. Each claimed file is validated (:mod:`~watcher.shell.pipeline.validating`).
2. Each valid pending row is fingerprinted and compared with what was last
   confirmed for its user (:mod:`watcher.core.changes`).
3. Once per batch, before anything is sent: for a full snapshot, the known
   users it lacks (:mod:`~watcher.shell.pipeline.snapshots`); then the
   safeguard: a batch that would change or deactivate too many of the
   tenant's known users, or a full snapshot far smaller than them, is held,
   its customer told, and nothing is sent until an operator approves it.
4. Rows that would send what was confirmed within the resend window are
   journaled ``unchanged`` and not sent; the others are sent
   (:mod:`~watcher.shell.pipeline.pushing`), and their fingerprints confirmed as
   their outcomes are recorded.
5. Then the missing users to deactivate are
   (:mod:`~watcher.shell.pipeline.deactivating`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.changes import compare, fingerprints, summarise, user_key
from watcher.core.codes import Code
from watcher.core.states import Safeguard
from watcher.shell.journal import Confirmed
from watcher.shell.pipeline.deactivating import deactivate
from watcher.shell.pipeline.pushing import push, sink_for
from watcher.shell.pipeline.reports import write_hold_notice
from watcher.shell.pipeline.snapshots import find_missing, hold_for, idents
from watcher.shell.pipeline.validating import validate_claimed, validate_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.config import TenantConfig
    from watcher.core.changes import ChangeSummary
    from watcher.core.records import BatchView, FileRecord
    from watcher.core.schema import Schema
    from watcher.core.validation import ValidationReport
    from watcher.shell.journal import MissingSet
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.pipeline.turns import Turns

__all__ = ["Stop", "discard", "import_batch"]

_DISCARDED = (
    "This file was held because it would change many users at once, and an administrator "
    "discarded it: none of its users were imported. If it was right, upload it again and "
    "tell us, so it is let through."
)


_NOT_DEACTIVATED = "The import was discarded, so this user was not deactivated."


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """Why the import step stopped with rows pending; ``held`` by the safeguard."""

    reason: str
    held: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _ToSend:
    """One file's pending rows, fingerprinted and compared with what its users have."""

    record: FileRecord
    rows: pl.DataFrame
    compared: pl.DataFrame
    identical: bool


def import_batch(
    ctx: BatchContext,
    tenant: TenantConfig,
    view: BatchView,
    schema_of: Callable[[FileRecord], Schema],
    *,
    reports: dict[str, ValidationReport],
    paces: list[tuple[int, int]],
) -> Turns[Stop | None]:
    """Validate what is claimed and import what is pending; why it stopped, if it did.

    ``reports`` gains the report of every file validated, for the failure
    report; ``paces`` the range of requests in flight of each file sent to an API.
    """
    files = []
    for record in validate_claimed(ctx, view, schema_of, reports):
        pending = ctx.journal.rows.pending(record.id)
        if not pending:
            continue
        if record.id not in reports:  # validated by a run that stopped: read it again
            reports[record.id] = validate_file(ctx, record, schema_of(record))
        files.append(
            _compared(
                ctx, tenant, record, schema_of(record), report=reports[record.id], pending=pending
            )
        )
    if (files or tenant.snapshot == "full") and view.batch.safeguard is None:
        held = _safeguard(ctx, tenant, view, files, schema_of, reports=reports)
        if held is not None:
            return held
    for file in files:
        stop = yield from _send(ctx, tenant, file, schema_of(file.record), paces)
        if stop is not None:
            return stop
    readable = [f.record for f in view.files if f.record.schema_digest is not None]
    if readable:  # a partial tenant has none pending: one cheap look
        reason = yield from deactivate(ctx, tenant, view.id, schema_of(readable[0]))
        if reason is not None:
            return Stop(reason=reason)
    return None


# What a batch with no row to send compares: nothing.
_NONE_COMPARED = pl.DataFrame(schema={"status": pl.String, "changes": pl.String})


def _safeguard(
    ctx: BatchContext,
    tenant: TenantConfig,
    view: BatchView,
    files: list[_ToSend],
    schema_of: Callable[[FileRecord], Schema],
    *,
    reports: dict[str, ValidationReport],
) -> Stop | None:
    """What the batch would do, with its missing users, journaled; held, or passed (None)."""
    changes = summarise(
        pl.concat([f.compared for f in files]) if files else _NONE_COMPARED,
        known=ctx.journal.users.count(tenant.name, tenant.target),
    )
    missing = None
    if tenant.snapshot == "full":
        view = ctx.journal.batches.view(view.id)  # as validation left it
        missing, changes = find_missing(
            ctx, tenant, view, schema_of, reports=reports, changes=changes
        )
    held = hold_for(tenant, changes)
    if held is not None:
        return _hold(ctx, tenant, view, dataclasses.replace(changes, hold=held), missing)
    ctx.journal.batches.check(view.id, Safeguard.PASSED, changes, missing)
    return None


def _compared(
    ctx: BatchContext,
    tenant: TenantConfig,
    record: FileRecord,
    schema: Schema,
    *,
    report: ValidationReport,
    pending: list[int],
) -> _ToSend:
    rows = report.api_rows().filter(pl.col("row").is_in(pending))
    prints = fingerprints(rows, user_key(schema))
    known = ctx.journal.users.known(tenant.name, tenant.target, prints["key"].to_list())
    compared = compare(prints, known, now=ctx.clock(), resend_after=tenant.resend_unchanged_after)
    since = ctx.clock() - tenant.resend_unchanged_after
    identical = ctx.journal.files.identical(record, since) is not None
    return _ToSend(record=record, rows=rows, compared=compared, identical=identical)


def _hold(
    ctx: BatchContext,
    tenant: TenantConfig,
    view: BatchView,
    changes: ChangeSummary,
    missing: MissingSet | None,
) -> Stop:
    """Hold the batch for an operator, and tell the customer why."""
    ctx.journal.batches.check(view.id, Safeguard.HELD, changes, missing)
    # Read again: the view was taken before its files' rows were recorded.
    write_hold_notice(ctx, tenant, ctx.journal.batches.view(view.id), changes)
    ctx.log.critical(
        "batch.held",
        reason=changes.hold,
        changed=changes.changed,
        deactivate=changes.deactivate,
        missing=changes.missing,
        known=changes.known,
        share=round(changes.share, 3),
        columns=[name for name, _ in changes.columns],
        rows=changes.rows,
        snapshot=changes.snapshot,
    )
    if changes.hold == "small_snapshot":
        why = (
            f"its snapshot names {changes.snapshot or 0:,} users of {changes.known:,} known "
            f"({changes.missing:,} missing)"
        )
    else:
        deactivated = f" and deactivate {changes.deactivate:,}" if changes.deactivate else ""
        why = f"it would change {changes.changed:,}{deactivated} of {changes.known:,} known users"
    return Stop(reason=f"held for review: {why}", held=True)


def discard(ctx: BatchContext, view: BatchView) -> None:
    """An operator discarded the held batch: each of its files fails whole, with why."""
    for file in view.files:
        if file.record.code is None:
            ctx.journal.rows.fail_file(file.record.id, Code.FILE_DISCARDED.value, _DISCARDED)
    ctx.journal.missing.fail_pending(view.id, Code.FILE_DISCARDED.value, _NOT_DEACTIVATED)
    ctx.log.warning("batch.discarded", files=len(view.files), rows=view.counts.pending)


def _send(
    ctx: BatchContext,
    tenant: TenantConfig,
    file: _ToSend,
    schema: Schema,
    paces: list[tuple[int, int]],
) -> Turns[Stop | None]:
    """Journal a file's unchanged rows, then send the rest."""
    # An identical re-upload never sends a row twice, whatever skip_unchanged says.
    skip = not ctx.resend_all and (tenant.skip_unchanged or file.identical)
    compared = file.compared
    unchanged = compared.filter(pl.col("status") == "unchanged") if skip else compared.clear()
    ctx.journal.rows.mark_unchanged(file.record.id, unchanged["row"].to_list())
    to_send = compared.filter(~pl.col("row").is_in(unchanged["row"].implode()))
    rows = file.rows.filter(pl.col("row").is_in(to_send["row"].implode()))
    confirmed = Confirmed(
        tenant=tenant.name,
        target=tenant.target,
        now=ctx.clock(),
        prints={
            row: (key, digest, fields)
            for row, key, digest, fields in to_send.select(
                "row", "key", "digest", "fields"
            ).iter_rows()
        },
        idents=idents(tenant, rows),
    )
    sink = sink_for(ctx, tenant, file.record, schema)
    reason = yield from push(ctx, sink, file.record, rows, confirmed, unchanged=unchanged.height)
    if (pace := sink.concurrency()) is not None:
        paces.append(pace)
    return None if reason is None else Stop(reason=reason)
