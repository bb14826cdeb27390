"""The second half of a batch's import step: sending a file's rows and recording each outcome.

Outcomes are journaled as the API or the store reports them, 500 at a time,
so a batch killed at any point sends at most the rows that were in flight
again (an upsert: the same effect); with them, in the same transaction, the
fingerprints of the imported rows are confirmed for their users. If the API
is unavailable or refuses the token, sending stops and says why; the rows
not reported stay pending for the next run.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from watcher.core.changes import user_key
from watcher.errors import SinkUnavailableError
from watcher.shell import faults, logs
from watcher.shell.pipeline.turns import Pushing, first_answer
from watcher.shell.targets.api import ApiSink
from watcher.shell.targets.userstore import UserStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import polars as pl

    from watcher.config import TenantConfig
    from watcher.core.records import FileRecord
    from watcher.core.schema import Schema
    from watcher.shell.journal import Confirmed
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.pipeline.turns import Turns
    from watcher.shell.targets.sinks import Outcome, Sink

__all__ = ["api_sink", "push", "sending", "sink_for"]

_FLUSH_EVERY = 500


def sink_for(ctx: BatchContext, tenant: TenantConfig, record: FileRecord, schema: Schema) -> Sink:
    """Where the tenant's users go: its API, or the embedded store."""
    if tenant.api is not None:
        return api_sink(ctx, tenant)
    return UserStore(
        ctx.state.users, tenant.name, key=user_key(schema), source=record.id, clock=ctx.clock
    )


def api_sink(
    ctx: BatchContext, tenant: TenantConfig, *, url: str | None = None, method: str = "POST"
) -> ApiSink:
    """The tenant's API as a sink, counted in the metrics: its URL, or ``url`` by ``method``."""
    api = tenant.api
    assert api is not None  # noqa: S101 - only for tenants with an API
    metrics = ctx.metrics
    address = url or api.url
    return ApiSink(
        api,
        log=ctx.log,
        transport=ctx.engine.transport(address) if ctx.engine is not None else None,
        stop=ctx.stop,
        on_answer=(lambda status: metrics.request(tenant.name, status)) if metrics else None,
        on_retry=(lambda: metrics.retry(tenant.name)) if metrics else None,
        on_flight=(
            (lambda n, limit, rate: metrics.flight(tenant.name, n, limit, rate))
            if metrics
            else None
        ),
        url=url,
        method=method,
    )


def push(
    ctx: BatchContext,
    sink: Sink,
    record: FileRecord,
    rows: pl.DataFrame,
    confirmed: Confirmed,
    *,
    unchanged: int,
) -> Turns[str | None]:
    """Send ``rows`` (API rows of a file) through ``sink``; why it stopped, if it did.

    ``confirmed`` holds the fingerprint of each row, confirmed for its user
    once the row is imported; ``unchanged`` (the rows not sent) is logged. A
    push to an API is yielded to the run's driver (:mod:`.turns`); the
    embedded store, which writes as it goes, is written here.
    """
    imported: list[int] = []
    refused: list[tuple[int, str, str]] = []
    flushed = [False]

    def flush() -> None:
        if imported or refused:
            ctx.journal.rows.record_outcomes(record.id, imported, refused, confirmed)
            imported.clear()
            refused.clear()
            if not flushed[0]:
                flushed[0] = True
                faults.checkpoint("imported-some")

    def on_outcome(outcome: Outcome) -> None:
        if outcome.imported:
            imported.append(outcome.row)
        else:
            refused.append((outcome.row, outcome.code or "", outcome.message or ""))
        if len(imported) + len(refused) >= _FLUSH_EVERY:
            flush()

    payloads = (
        {k: v for k, v in row.items() if v is not None}
        for chunk in rows.iter_slices(10_000)
        for row in chunk.iter_rows(named=True)
    )
    started = ctx.timer()
    # The sink's events (import.rejected, retries) name the file they concern.
    logs.bind(file=record.name)
    try:
        yield from sending(ctx, sink, record.tenant, payloads, on_outcome)
    except SinkUnavailableError as exc:
        if ctx.stop is not None and ctx.stop.is_set():
            # Not the API's doing: the rows wait for the service's next start.
            return "stopped: the service is stopping"
        return f"{sink.kind} {exc.reason}: {exc.detail}"
    finally:
        logs.unbind("file")
        flush()
    low, high = sink.concurrency() or (None, None)
    ctx.log.info(
        "file.imported",
        file=record.name,
        sink=sink.kind,
        rows=rows.height,
        unchanged=unchanged,
        duration=round(ctx.timer() - started, 3),
        concurrency_min=low,
        concurrency_max=high,
    )
    return None


def sending(
    ctx: BatchContext,
    sink: Sink,
    tenant: str,
    payloads: Iterator[dict[str, Any]],
    on_outcome: Callable[[Outcome], None],
) -> Turns[None]:
    """An API push, to the run's driver; the embedded store, which writes as it goes, here."""
    if ctx.engine is not None and isinstance(sink, ApiSink):
        yield Pushing(
            engine=ctx.engine,
            tenant=tenant,
            sink=sink,
            payloads=payloads,
            record=on_outcome,
        )
    else:
        asyncio.run(sink.push(payloads, first_answer(on_outcome)))
