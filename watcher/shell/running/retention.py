"""Keeping customers' data only as long as it should be: a tenant's ``retention``.

Past it, a pass deletes the tenant's archives (each archived file, its
``.result.json`` and its ``.failures.csv``) in ``.bak/`` and ``check/.bak/``,
its sent messages in ``sent/``, and the journal's per-row detail of its
finished batches; each batch's counts outlive their rows.

Deleting is a claim in reverse: by directory descriptor, never following a
link (a link planted in ``.bak`` is removed as a link, its target never
touched, and a ``.bak`` that is itself a link is left alone and said), never
into a subfolder, and never anything an unfinished or held batch still
needs. Names in ``.bak`` are the customer's input as much as the service's:
an archive is dated only by the tail the service appended to its name
(``users.20261122T061500Z.1a2b3c4d.csv``, read from the right by
:func:`watcher.core.names.archived_at`), never by a stamp the customer wrote;
entries without that tail are not ours to delete. A ``.bak`` the service does
not own (a customer renamed the service's away and made their own) is left
alone with a warning: its entries are the customer's.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.core.names import archived_at, shown
from watcher.shell.intake.dropfolder import BAK, service_owns

if TYPE_CHECKING:
    from collections.abc import Set as AbstractSet

    from watcher.config import TenantConfig
    from watcher.shell.pipeline.context import BatchContext

__all__ = ["Pruned", "prune"]

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Pruned:
    """What one pass deleted for a tenant."""

    archives: int = 0
    messages: int = 0
    batches: int = 0


def prune(ctx: BatchContext, tenant: TenantConfig, now: float) -> Pruned | None:
    """Delete what the tenant keeps for longer than its retention; None without one."""
    if tenant.retention is None:
        return None
    before = now - tenant.retention
    protected = _still_needed(ctx, tenant)
    archives = sum(
        _prune_bak(ctx, tenant, folder, before, protected)
        for folder in (tenant.drop_dir, tenant.check_dir)
    )
    messages = 0
    for message in ctx.journal.messages.sent_before(tenant.name, before):
        sent = ctx.state.sent / Path(message.path).name
        try:
            sent.unlink()
        except FileNotFoundError:
            continue
        messages += 1
    batches = 0
    finished = ctx.journal.batches.finished_before(tenant.name, before)
    for batch_id in finished:
        view = ctx.journal.batches.view(batch_id)
        if ctx.journal.rows.forget([f.record.id for f in view.files]):
            batches += 1
    # A full snapshot's missing users go with the rows: the batch keeps their counts.
    ctx.journal.missing.forget(finished)
    pruned = Pruned(archives=archives, messages=messages, batches=batches)
    ctx.log.info(
        "retention.pruned",
        tenant=tenant.name,
        before=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(before)),
        archives=pruned.archives,
        messages=pruned.messages,
        batches=pruned.batches,
    )
    return pruned


def _still_needed(ctx: BatchContext, tenant: TenantConfig) -> AbstractSet[str]:
    """The archive names of files whose batches are not done (held ones among them)."""
    return {
        f.record.archive_name
        for batch in ctx.journal.batches.unfinished(tenant.name)
        for f in ctx.journal.batches.view(batch.id).files
        if f.record.archive_name is not None
    }


def _prune_bak(
    ctx: BatchContext,
    tenant: TenantConfig,
    folder: Path,
    before: float,
    protected: AbstractSet[str],
) -> int:
    """Delete the archives in ``folder/.bak`` stamped before ``before``; how many entries."""
    try:
        parent = os.open(folder, _OPEN_DIR)
    except OSError:
        return 0  # no such folder (a check folder never made): nothing kept there
    try:
        try:
            bak = os.open(BAK, _OPEN_DIR, dir_fd=parent)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                ctx.log.warning(
                    "retention.bak_not_a_folder", tenant=tenant.name, path=str(folder / BAK)
                )
                return 0
            if exc.errno in (errno.EACCES, errno.EPERM):  # a customer's folder, closed to us
                ctx.log.warning(
                    "retention.bak_not_ours", tenant=tenant.name, path=str(folder / BAK)
                )
                return 0
            raise
    finally:
        os.close(parent)
    try:
        if not service_owns(os.fstat(bak)):
            ctx.log.warning("retention.bak_not_ours", tenant=tenant.name, path=str(folder / BAK))
            return 0
        return _prune_entries(ctx, tenant, bak, before, protected)
    finally:
        os.close(bak)


def _prune_entries(
    ctx: BatchContext,
    tenant: TenantConfig,
    bak: int,
    before: float,
    protected: AbstractSet[str],
) -> int:
    """Delete the archives of ``bak`` made before ``before``; how many entries.

    One entry that cannot go (a full or read-only file system) does not keep
    the others: the pass goes on and says how many stayed.
    """
    deleted = failed = 0
    for name in os.listdir(bak):  # by descriptor, never by path
        if ctx.stop is not None and ctx.stop.is_set():
            break  # the service is stopping: the rest waits for the next pass
        stamp = archived_at(name)
        if stamp is None or stamp >= before or any(name.startswith(p) for p in protected):
            continue
        try:
            info = os.stat(name, dir_fd=bak, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                continue  # never into a subfolder
            os.unlink(name, dir_fd=bak)  # a link goes as a link: its target is never touched
        except FileNotFoundError:
            continue
        except OSError as exc:
            failed += 1
            if failed == 1:
                ctx.log.warning(
                    "retention.entry_kept",
                    tenant=tenant.name,
                    file=shown(name),
                    error=exc.strerror or type(exc).__name__,
                )
            continue
        deleted += 1
    return deleted
