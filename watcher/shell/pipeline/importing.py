"""A batch's import step: validate, compare with what users have, hold or send.

1. Each claimed file is validated (:mod:`~watcher.shell.pipeline.validating`).
2. Each valid pending row is fingerprinted and compared with what was last
   confirmed for its user (:mod:`watcher.core.changes`).
3. Once per batch, before anything is sent, the safeguard: a batch that
   would change too many of the tenant's known users is held, its customer
   told, and nothing is sent until an operator approves it.
4. Rows that would send what was confirmed within the resend window are
   journaled ``unchanged`` and not sent; the others are sent
   (:mod:`~watcher.shell.pipeline.pushing`), and their fingerprints confirmed as
   their outcomes are recorded.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.changes import compare, fingerprints, holds, summarise, user_key
from watcher.core.codes import Code
from watcher.core.states import Safeguard
from watcher.shell.journal import Confirmed
from watcher.shell.pipeline.pushing import push, sink_for
from watcher.shell.pipeline.reports import write_hold_notice
from watcher.shell.pipeline.validating import validate_claimed, validate_file

if TYPE_CHECKING:
    from collections.abc import Callable

    from watcher.config import TenantConfig
    from watcher.core.changes import ChangeSummary
    from watcher.core.records import BatchView, FileRecord
    from watcher.core.schema import Schema
    from watcher.core.validation import ValidationReport
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.pipeline.turns import Turns

__all__ = ["Stop", "discard", "import_batch"]

_DISCARDED = (
    "This file was held because it would change many users at once, and an administrator "
    "discarded it: none of its users were imported. If it was right, upload it again and "
    "tell us, so it is let through."
)


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
    if files and view.batch.safeguard is None:
        changes = summarise(
            pl.concat([f.compared for f in files]),
            known=ctx.journal.users.count(tenant.name, tenant.target),
        )
        if holds(
            changes,
            changed_share=tenant.safeguard_changed,
            min_known=tenant.safeguard_min_known,
        ):
            return _hold(ctx, tenant, view, changes)
        ctx.journal.batches.check(view.id, Safeguard.PASSED, changes)
    for file in files:
        stop = yield from _send(ctx, tenant, file, schema_of(file.record), paces)
        if stop is not None:
            return stop
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


def _hold(ctx: BatchContext, tenant: TenantConfig, view: BatchView, changes: ChangeSummary) -> Stop:
    """Hold the batch for an operator, and tell the customer why."""
    ctx.journal.batches.check(view.id, Safeguard.HELD, changes)
    # Read again: the view was taken before its files' rows were recorded.
    write_hold_notice(ctx, tenant, ctx.journal.batches.view(view.id), changes)
    ctx.log.critical(
        "batch.held",
        changed=changes.changed,
        known=changes.known,
        share=round(changes.share, 3),
        columns=[name for name, _ in changes.columns],
        rows=changes.rows,
    )
    return Stop(
        reason=(
            f"held for review: it would change {changes.changed:,} of {changes.known:,} known users"
        ),
        held=True,
    )


def discard(ctx: BatchContext, view: BatchView) -> None:
    """An operator discarded the held batch: each of its files fails whole, with why."""
    for file in view.files:
        if file.record.code is None:
            ctx.journal.rows.fail_file(file.record.id, Code.FILE_DISCARDED.value, _DISCARDED)
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
    )
    rows = file.rows.filter(pl.col("row").is_in(to_send["row"].implode()))
    sink = sink_for(ctx, tenant, file.record, schema)
    reason = yield from push(ctx, sink, file.record, rows, confirmed, unchanged=unchanged.height)
    if (pace := sink.concurrency()) is not None:
        paces.append(pace)
    return None if reason is None else Stop(reason=reason)
