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
import concurrent.futures
import queue
from typing import TYPE_CHECKING, Any

from watcher.core.changes import user_key
from watcher.errors import SinkUnavailableError
from watcher.shell import faults, logs
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
    from watcher.shell.targets.engine import Engine
    from watcher.shell.targets.sinks import Outcome, Sink

__all__ = ["push", "sink_for"]

_FLUSH_EVERY = 500
_LOOK_EVERY = 0.1  # seconds between looks at a push with no outcome to record


def sink_for(ctx: BatchContext, tenant: TenantConfig, record: FileRecord, schema: Schema) -> Sink:
    """Where the tenant's users go: its API, or the embedded store."""
    if tenant.api is not None:
        metrics = ctx.metrics
        return ApiSink(
            tenant.api,
            log=ctx.log,
            transport=ctx.engine.transport(tenant.api.url) if ctx.engine is not None else None,
            stop=ctx.stop,
            on_answer=(lambda status: metrics.request(tenant.name, status)) if metrics else None,
            on_retry=(lambda: metrics.retry(tenant.name)) if metrics else None,
            on_flight=(
                (lambda n, limit, rate: metrics.flight(tenant.name, n, limit, rate))
                if metrics
                else None
            ),
        )
    return UserStore(
        ctx.state.users, tenant.name, key=user_key(schema), source=record.id, clock=ctx.clock
    )


def push(
    ctx: BatchContext,
    sink: Sink,
    record: FileRecord,
    rows: pl.DataFrame,
    confirmed: Confirmed,
    *,
    unchanged: int,
) -> str | None:
    """Send ``rows`` (API rows of a file) through ``sink``; why it stopped, if it did.

    ``confirmed`` holds the fingerprint of each row, confirmed for its user
    once the row is imported; ``unchanged`` (the rows not sent) is logged.
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
        if not imported and not refused and not flushed[0]:
            faults.checkpoint("answered")  # an answer is in, not yet journaled
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
        _send(ctx, record.tenant, sink, payloads, on_outcome)
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


def _send(
    ctx: BatchContext,
    tenant: str,
    sink: Sink,
    payloads: Iterator[dict[str, Any]],
    on_outcome: Callable[[Outcome], None],
) -> None:
    """An API push on the engine; the embedded store, which writes as it goes, on this thread."""
    if ctx.engine is not None and isinstance(sink, ApiSink):
        with ctx.engine.importing(tenant, sink.gate):
            _on_the_engine(ctx.engine, sink, payloads, on_outcome)
    else:
        asyncio.run(sink.push(payloads, on_outcome))


def _on_the_engine(
    engine: Engine,
    sink: ApiSink,
    payloads: Iterator[dict[str, Any]],
    on_outcome: Callable[[Outcome], None],
) -> None:
    """Push on the process's import engine; journal the outcomes here, as they come.

    The requests of every tenant share the engine's one loop; the journal
    connection belongs to this thread, so the outcomes come back through a
    queue and are recorded here while the requests fly.

    Raises:
        SinkUnavailableError: the sink stopped (the API, the token, a stop).
    """
    outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    first = [True]

    def arrived(outcome: Outcome) -> None:  # on the engine's loop, as each answer comes
        if first[0]:
            first[0] = False
            faults.checkpoint("answered")  # an answer is in, not yet journaled
        outcomes.put(outcome)

    pushed = engine.submit(sink.push(payloads, arrived))
    while True:
        try:
            on_outcome(outcomes.get(timeout=_LOOK_EVERY))
        except queue.Empty:
            if pushed.done():
                break
    while not outcomes.empty():  # every outcome is put before the push is done
        on_outcome(outcomes.get_nowait())
    try:
        pushed.result()
    except concurrent.futures.CancelledError as exc:  # the engine closed under it
        raise SinkUnavailableError("unavailable", "the service is stopping") from exc
