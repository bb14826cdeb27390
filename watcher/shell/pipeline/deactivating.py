"""Deactivating a full snapshot's missing users, after its rows are imported.

Each user the batch journaled ``pending`` (:mod:`watcher.shell.journal.missing`)
is sent once through the tenant's API sink (the same retries, pacing, token
and stop as an import): its key fields, the fields that name it to the API
(kept with its fingerprint), and the tenant's ``deactivate_fields``, to its
URL or ``deactivate_url`` by ``deactivate_method``. Outcomes are journaled 500
at a time, each deactivation with the forgetting of the user's fingerprint.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from watcher.core.changes import split_key, user_key
from watcher.errors import SinkUnavailableError
from watcher.shell import faults
from watcher.shell.pipeline.pushing import api_sink, sending

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from watcher.config import TenantConfig
    from watcher.core.schema import Schema
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.pipeline.turns import Turns
    from watcher.shell.targets.sinks import Outcome

__all__ = ["deactivate"]

_FLUSH_EVERY = 500


def deactivate(
    ctx: BatchContext, tenant: TenantConfig, batch_id: str, schema: Schema
) -> Turns[str | None]:
    """Send the batch's pending deactivations; why it stopped, if it did.

    ``schema`` names the key's fields (the batch's files' schema).
    """
    api = tenant.api
    pending = ctx.journal.missing.pending(batch_id)
    if api is None or not pending:
        return None
    keys = [key for key, _ in pending]
    deactivated: list[str] = []
    refused: list[tuple[str, str, str]] = []

    def flush() -> None:
        if deactivated or refused:
            ctx.journal.missing.record_outcomes(batch_id, deactivated, refused)
            deactivated.clear()
            refused.clear()
            faults.checkpoint("deactivated-some")

    def on_outcome(outcome: Outcome) -> None:
        key = keys[outcome.row]
        if outcome.imported:
            deactivated.append(key)
        else:
            refused.append((key, outcome.code or "", outcome.message or ""))
        if len(deactivated) + len(refused) >= _FLUSH_EVERY:
            flush()

    sink = api_sink(ctx, tenant, url=api.deactivate_url, method=api.deactivate_method)
    started = ctx.timer()
    try:
        yield from sending(
            ctx,
            sink,
            tenant.name,
            _payloads(pending, user_key(schema), api.deactivate_fields),
            on_outcome,
        )
    except SinkUnavailableError as exc:
        if ctx.stop is not None and ctx.stop.is_set():
            return "stopped: the service is stopping"
        return f"{sink.kind} {exc.reason}: {exc.detail}"
    finally:
        flush()
    counts = ctx.journal.missing.counts(batch_id)
    ctx.log.info(
        "snapshot.deactivated",
        deactivated=counts.deactivated,
        refused=counts.refused,
        duration=round(ctx.timer() - started, 3),
    )
    return None


def _payloads(
    pending: Sequence[tuple[str, str | None]],
    key_fields: Sequence[str],
    fields: Sequence[tuple[str, Any]],
) -> Iterator[dict[str, Any]]:
    """Each deactivation's body (without the token), numbered in the order of ``pending``."""
    for number, (key, ident) in enumerate(pending):
        body: dict[str, Any] = {"row": number}
        named = json.loads(ident) if ident else {}
        body.update((k, v) for k, v in named.items() if v is not None)
        body.update(zip(key_fields, split_key(key), strict=False))
        body.update(fields)
        yield body
