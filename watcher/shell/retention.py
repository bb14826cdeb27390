"""Keeping customers' data only as long as it should be: a tenant's ``retention``.

Past it, a pass deletes the tenant's archives (each archived file, its
``.result.json`` and its ``.failures.csv``) in ``.bak/`` and ``check/.bak/``,
its sent messages in ``sent/``, and the journal's per-row detail of its
finished batches; each batch's counts outlive their rows.

Deleting is a claim in reverse: by directory descriptor, never following a
link (a link planted in ``.bak`` is removed as a link, its target never
touched, and a ``.bak`` that is itself a link is left alone and said), never
into a subfolder, and never anything an unfinished or held batch still
needs. Archives are dated by the stamp their names carry
(``users.20261122T061500Z.1a2b3c4d.csv``); entries without one are not
ours to delete.
"""

from __future__ import annotations

import calendar
import dataclasses
import errno
import os
import re
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.shell.dropfolder import BAK

if TYPE_CHECKING:
    from collections.abc import Set as AbstractSet

    from watcher.config import TenantConfig
    from watcher.shell.context import BatchContext

__all__ = ["Pruned", "prune"]

_STAMP = re.compile(r"\.(\d{8}T\d{6}Z)\.[0-9a-f]{8}")
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
    for batch_id in ctx.journal.batches.finished_before(tenant.name, before):
        view = ctx.journal.batches.view(batch_id)
        if ctx.journal.rows.forget([f.record.id for f in view.files]):
            batches += 1
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
            raise
    finally:
        os.close(parent)
    deleted = 0
    try:
        for name in os.listdir(bak):  # noqa: PTH208 - by descriptor, never by path
            if not _old(name, before) or any(name.startswith(p) for p in protected):
                continue
            try:
                info = os.stat(name, dir_fd=bak, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(info.st_mode):
                continue  # never into a subfolder
            os.unlink(name, dir_fd=bak)  # a link goes as a link: its target is never touched
            deleted += 1
    finally:
        os.close(bak)
    return deleted


def _old(name: str, before: float) -> bool:
    """Whether ``name`` carries an archive stamp earlier than ``before``."""
    found = _STAMP.search(name)
    if found is None:
        return False
    stamp = calendar.timegm(time.strptime(found.group(1), "%Y%m%dT%H%M%SZ"))
    return stamp < before
