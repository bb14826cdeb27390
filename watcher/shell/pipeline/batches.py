"""Running batches: the one place a batch moves from step to step.

A batch's steps (:mod:`watcher.core.states` draws them) are carried out by
their own modules: :mod:`~watcher.shell.pipeline.claiming`,
:mod:`~watcher.shell.pipeline.importing`, :mod:`~watcher.shell.pipeline.reports` and
:mod:`~watcher.shell.pipeline.archiving`. :class:`BatchRun` reads the batch once per
step, runs the step, and only then moves the batch on, so a batch killed at
any point resumes where the journal says it stopped.

:func:`run_tenant` is what every caller runs: the service's workers, ``watcher
run --once`` and ``watcher process``. It finishes the tenant's unfinished
batches first (upsert order matters), then claims and runs the new one.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from watcher.core.reporting import LISTED_ROWS
from watcher.core.schema_parser import parse_schema
from watcher.core.states import BatchState, FileState, Safeguard
from watcher.shell import faults, logs
from watcher.shell.mail import mailer
from watcher.shell.pipeline.archiving import archive_batch, name_archives
from watcher.shell.pipeline.claiming import claim, set_aside
from watcher.shell.pipeline.importing import Stop, discard, import_batch
from watcher.shell.pipeline.reports import write_report

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence
    from pathlib import Path

    from watcher.config import TenantConfig
    from watcher.core.records import BatchView, Counts, FileRecord
    from watcher.core.refusals import Refused
    from watcher.core.schema import Schema
    from watcher.core.validation import ValidationReport
    from watcher.shell.journal import Failure
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.pipeline.turns import Turns
    from watcher.shell.running.schemas import InForce

__all__ = ["BatchResult", "BatchRun", "run_tenant", "start_up", "take_over"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """How a batch ended: complete, or stopped with rows pending and why (``held`` for review)."""

    batch_id: str
    tenant: str
    complete: bool
    files: int
    counts: Counts
    reason: str | None = None
    held: bool = False


def run_tenant(
    ctx: BatchContext,
    tenant: TenantConfig,
    names: Sequence[str] = (),
    schema: InForce | None = None,
    refusals: Sequence[Refused] = (),
    *,
    waited: Mapping[str, float] | None = None,
) -> Turns[list[BatchResult]]:
    """Finish the tenant's unfinished batches, then claim ``names`` under ``schema`` and run them.

    A run in turns (:mod:`.turns`): ``here(run_tenant(...))`` takes it on
    the calling thread.

    ``refusals`` (uploads cut off and never resumed) are set aside as a batch
    of their own. Names need a schema; without one only unfinished batches run.
    ``waited`` says how long ago each name was first heard of: a file counts
    as received then, not when it is claimed.
    """
    results: list[BatchResult] = []
    held: str | None = None
    for batch in ctx.journal.batches.unfinished(tenant.name):
        if held is not None:
            results.append(_waiting(ctx, batch.id, held))
            continue
        result = yield from BatchRun(ctx, batch.id).run()
        results.append(result)
        if result.held:
            held = batch.id
    new = [set_aside(ctx, tenant, refusals)]
    if names and schema is not None:
        new.append(claim(ctx, tenant, names, schema, waited=waited or {}))
    for batch_id in new:
        if batch_id is None:
            continue
        result = (
            (yield from BatchRun(ctx, batch_id).run())
            if held is None
            else _waiting(ctx, batch_id, held)
        )
        results.append(result)
        if result.held:
            held = batch_id
    return results


def _waiting(ctx: BatchContext, batch_id: str, held: str) -> BatchResult:
    """A batch that waits behind a held one of its tenant: upserts must keep their order."""
    view = ctx.journal.batches.view(batch_id)
    ctx.log.info("batch.waiting", batch_id=batch_id, held=held, rows=view.counts.total)
    return BatchRun.result(view, reason=f"waiting behind the held batch {held[:8]}")


class BatchRun:
    """One batch, taken as far as it can go; safe to run again after a crash."""

    def __init__(self, ctx: BatchContext, batch_id: str) -> None:
        self.ctx = ctx
        self.batch_id = batch_id
        # Validation reports of this run: their tables make the failure lists.
        self.reports: dict[str, ValidationReport] = {}
        self._schemas: dict[str, Schema] = {}
        self._listed: dict[str, list[Failure]] = {}
        # The range of requests in flight each file's push to the API had.
        self.paces: list[tuple[int, int]] = []

    def schema_of(self, record: FileRecord) -> Schema:
        """The schema a file was claimed under, parsed once per run."""
        digest = record.schema_digest
        assert digest is not None  # noqa: S101 - claimed files have one
        if digest not in self._schemas:
            self._schemas[digest] = parse_schema(self.ctx.journal.batches.schema_text(digest))
        return self._schemas[digest]

    def listed(self, file_id: str) -> list[Failure]:
        """A file's first failures, as many as a report lists, read once per run."""
        if file_id not in self._listed:
            self._listed[file_id] = self.ctx.journal.rows.listed_failures(file_id, LISTED_ROWS)
        return self._listed[file_id]

    def run(self) -> Turns[BatchResult]:
        """Run the batch's remaining steps; stop, with rows pending, if the API is unavailable."""
        journal, clock = self.ctx.journal, self.ctx.clock
        view = journal.batches.view(self.batch_id)
        tenant = self.ctx.config.tenant(view.batch.tenant)
        logs.bind(tenant=tenant.name, batch_id=self.batch_id)
        started = self.ctx.timer()
        try:
            state = view.batch.state
            while state is not BatchState.DONE:
                match state:
                    case BatchState.IMPORTING:
                        stop = yield from self._import(tenant, view)
                        if stop is not None:
                            return self._stopped(stop)
                        faults.checkpoint("imported")
                    case BatchState.REPORTING:
                        view = name_archives(self.ctx, view)
                        write_report(self.ctx, tenant, view, self.reports, self.listed)
                    case BatchState.ARCHIVING:
                        archive_batch(self.ctx, tenant, view, self.listed)
                    case BatchState.CLAIMING:
                        pass  # the files are claimed: a run starts with what there is
                state = journal.batches.advance(self.batch_id, state, clock())
                if state in _CRASH_POINTS:
                    faults.checkpoint(_CRASH_POINTS[state])
                view = journal.batches.view(self.batch_id)
                if state is BatchState.DONE:
                    journal.history.keep(view)
            result = self.result(view, complete=True)
            if self.ctx.metrics is not None:
                duration = self.ctx.timer() - started
                self.ctx.metrics.batch_done(view, duration=duration, now=self.ctx.clock())
            self.ctx.log.info(
                "batch.completed",
                files=result.files,
                rows=result.counts.total,
                imported=result.counts.imported,
                unchanged=result.counts.unchanged,
                failed=result.counts.failed,
                pending=result.counts.pending,
                missing=result.counts.missing,
                deactivated=result.counts.deactivated,
                # From the batch's start, as a file's duration is from its arrival;
                # a batch resumed after a stop or a hold took longer than this run.
                duration=round(self.ctx.clock() - view.batch.created_at, 3),
                run=round(self.ctx.timer() - started, 3),
                concurrency_min=min((low for low, _ in self.paces), default=None),
                concurrency_max=max((high for _, high in self.paces), default=None),
            )
            return result
        finally:
            logs.unbind("tenant", "batch_id")

    def _import(self, tenant: TenantConfig, view: BatchView) -> Turns[Stop | None]:
        """The import step, as the safeguard allows: not while held, nothing once discarded."""
        match view.batch.safeguard:
            case Safeguard.HELD:
                return Stop(
                    reason="held for review: approve or discard it (watcher hold)", held=True
                )
            case Safeguard.DISCARDED:
                discard(self.ctx, view)
                return None
            case Safeguard.APPROVED:
                self.ctx.log.info("batch.released", rows=view.counts.pending)
        return (
            yield from import_batch(
                self.ctx, tenant, view, self.schema_of, reports=self.reports, paces=self.paces
            )
        )

    def _stopped(self, stop: Stop) -> BatchResult:
        self.ctx.journal.batches.note_stopped(self.batch_id, stop.reason, self.ctx.clock())
        view = self.ctx.journal.batches.view(self.batch_id)
        result = self.result(view, reason=stop.reason, held=stop.held)
        self.ctx.log.warning(
            "batch.incomplete",
            reason=stop.reason,
            rows=result.counts.total,
            imported=result.counts.imported,
            unchanged=result.counts.unchanged,
            failed=result.counts.failed,
            pending=result.counts.pending,
            missing=result.counts.missing,
            deactivated=result.counts.deactivated,
        )
        return result

    @staticmethod
    def result(
        view: BatchView, *, complete: bool = False, reason: str | None = None, held: bool = False
    ) -> BatchResult:
        """The result of a batch as ``view`` shows it."""
        return BatchResult(
            batch_id=view.id,
            tenant=view.batch.tenant,
            complete=complete,
            files=len(view.files),
            counts=view.counts,
            reason=reason,
            held=held,
        )


# The crash points reached as a batch enters a state (see watcher.shell.faults).
_CRASH_POINTS = {BatchState.ARCHIVING: "reported", BatchState.DONE: "archived"}


def start_up(ctx: BatchContext, tenants: Collection[str] | None = None) -> None:
    """Put the state folder in order after whatever stopped the last run.

    Call with the state folder's lock held, before any batch runs. With a
    shared database only ``tenants`` (those this instance owns) are put in
    order: the others' spool and mail belong to the instances that own them.
    """
    if tenants is None:
        _clean_spool(ctx, ctx.state.spool_root.glob("*/*"))
        mailer.requeue_after_crash(ctx.journal, ctx.log)
    else:
        for tenant in tenants:
            take_over(ctx, tenant)
    # The page charts 30 days: batches of an older version get their counts kept.
    ctx.journal.history.backfill(since=ctx.clock() - 31 * 86400)


def take_over(ctx: BatchContext, tenant: str) -> None:
    """Put a tenant in order as this instance takes it (its last owner stopped or left)."""
    _clean_spool(ctx, (ctx.state.spool_root / tenant).glob("*"))
    mailer.requeue_after_crash(ctx.journal, ctx.log, tenant)


def _clean_spool(ctx: BatchContext, paths: Iterable[Path]) -> int:
    """Remove spool copies the journal does not know (a crash before journaling) or archived."""
    removed = 0
    for path in paths:
        file_id = path.name.split(".", 1)[0]
        try:
            record = ctx.journal.files.get(file_id)
        except KeyError:
            pass
        else:
            if record.state is not FileState.ARCHIVED:
                continue
        path.unlink(missing_ok=True)
        removed += 1
    return removed
