"""A batch's first step: taking files out of the drop folder into the spool.

Each file is copied into the spool (or refused, with a reason) and journaled,
so whatever the customer does to the drop folder afterwards cannot change
what is imported. Names an unfinished batch already holds (the same file, by
device, inode and modification time) are left to that batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.shell import faults
from watcher.shell.intake.dropfolder import Busy, Claimed, DropFolder, Gone
from watcher.shell.journal import new_id

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from watcher.config import TenantConfig
    from watcher.core.refusals import Refused
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.running.schemas import InForce

__all__ = ["claim", "set_aside"]


def claim(
    ctx: BatchContext,
    tenant: TenantConfig,
    names: Sequence[str],
    schema: InForce,
    *,
    waited: Mapping[str, float] | None = None,
) -> str | None:
    """Claim ``names`` from the tenant's drop folder as one new batch, under ``schema``.

    A file is received when it was first heard of, ``waited`` seconds ago
    (now, for a name with none): what its customer waits is counted from then.
    Returns the batch id, or None when nothing was taken.
    """
    busy = ctx.journal.files.claimed_entries(tenant.name)
    batch_id: str | None = None
    with DropFolder(tenant.drop_dir) as folder:
        for name in names:
            current = folder.lstat(name)
            if current is not None and (
                (name, current.st_dev, current.st_ino, current.st_mtime_ns) in busy
            ):
                continue
            file_id = new_id()
            result = folder.claim(
                name, ctx.state.spool(tenant.name, file_id), ctx.config.service.max_file_size
            )
            if isinstance(result, Busy):
                ctx.log.info("file.changing", tenant=tenant.name, file=name)
                continue
            if isinstance(result, Gone):
                ctx.log.info("file.gone", tenant=tenant.name, file=name)
                continue
            if batch_id is None:
                batch_id = new_id()
                ctx.journal.batches.open(tenant.name, batch_id, ctx.clock())
                ctx.journal.batches.remember_schema(schema.schema.digest, schema.text)
            if isinstance(result, Claimed):
                since = (waited or {}).get(name, 0.0)
                _record_claim(
                    ctx, batch_id, tenant.name, file_id, result, schema=schema, waited=since
                )
            else:
                _record_refusal(ctx, batch_id, tenant.name, file_id, result)
    if batch_id is not None:
        faults.checkpoint("claimed")
    return batch_id


def set_aside(ctx: BatchContext, tenant: TenantConfig, refusals: Sequence[Refused]) -> str | None:
    """Quarantine entries as one new batch, each with its reason (interrupted uploads)."""
    if not refusals:
        return None
    batch_id = new_id()
    ctx.journal.batches.open(tenant.name, batch_id, ctx.clock())
    for refusal in refusals:
        _record_refusal(ctx, batch_id, tenant.name, new_id(), refusal)
    return batch_id


def _record_claim(
    ctx: BatchContext,
    batch_id: str,
    tenant: str,
    file_id: str,
    claimed: Claimed,
    *,
    schema: InForce,
    waited: float,
) -> None:
    now = ctx.clock()
    ctx.journal.files.add_claimed(
        batch_id=batch_id,
        tenant=tenant,
        file_id=file_id,
        name=claimed.name,
        identity=claimed.identity,
        sha256=claimed.sha256,
        schema_digest=schema.schema.digest,
        now=now,
        received_at=now - max(0.0, waited),
    )
    ctx.log.info(
        "file.claimed",
        tenant=tenant,
        batch_id=batch_id,
        file=claimed.name,
        bytes=claimed.identity.size,
        sha256=claimed.sha256,
        schema=schema.schema.label,
    )


def _record_refusal(
    ctx: BatchContext, batch_id: str, tenant: str, file_id: str, refusal: Refused
) -> None:
    ctx.journal.files.add_refused(
        batch_id=batch_id,
        tenant=tenant,
        file_id=file_id,
        name=refusal.name,
        code=refusal.code.value,
        message=refusal.message,
        now=ctx.clock(),
    )
    ctx.log.warning(
        "file.refused",
        tenant=tenant,
        batch_id=batch_id,
        file=refusal.name,
        code=refusal.code.value,
        kind=refusal.kind,
    )
