"""A batch's last step: each file into ``.bak`` with its result, under a name of its own.

Every file gets its archive name once, before the report mentions it; then
the file moves into ``.bak`` (or, when the customer replaced it meanwhile,
the spool copy that was processed is written there), with its
``.result.json`` (counts and codes, no values) and its failure list beside
it. A full snapshot's missing users (their keys, what became of each) are in
every file's ``.result.json`` and, as a list, beside the batch's first file.
The spool copies go once the file is archived.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING

from watcher.core.changes import split_key
from watcher.core.names import archive_name, shown
from watcher.core.reporting import LISTED_ROWS
from watcher.core.states import STEP_ATTEMPTS, FileState
from watcher.shell import faults
from watcher.shell.intake.dropfolder import DropFolder
from watcher.shell.pipeline.openpgp import kept_list
from watcher.shell.pipeline.reports import missing_list

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from watcher.config import TenantConfig
    from watcher.core.records import BatchView, Counts, FileRecord, FileView
    from watcher.shell.journal import Failure
    from watcher.shell.pipeline.context import BatchContext

__all__ = ["archive_batch", "name_archives"]


def name_archives(ctx: BatchContext, view: BatchView) -> BatchView:
    """Give every file of the batch its archive name, once; the batch with the names."""
    files = []
    for file in view.files:
        record = file.record
        if record.archive_name is not None:
            files.append(file)
            continue
        name = archive_name(
            record.name, record.id, record.received_at, refused=record.state is FileState.REFUSED
        )
        ctx.journal.files.name_archive(record.id, name, ctx.clock())
        files.append(
            dataclasses.replace(file, record=dataclasses.replace(record, archive_name=name))
        )
    return dataclasses.replace(view, files=tuple(files))


def archive_batch(
    ctx: BatchContext,
    tenant: TenantConfig,
    view: BatchView,
    listed: Callable[[str], list[Failure]],
) -> None:
    """Archive every file of the batch not yet archived; safe to repeat after a crash."""
    view = name_archives(ctx, view)
    snapshot = _snapshot_document(ctx, view) if tenant.snapshot == "full" else None
    with DropFolder(tenant.drop_dir) as folder:
        for index, file in enumerate(view.files):
            record = file.record
            if record.state is FileState.ARCHIVED:
                continue
            if index == 0 and record.state is not FileState.REFUSED:
                _keep_missing_list(ctx, tenant, folder, view)
            identical = (
                ctx.journal.files.identical(
                    record, record.received_at - tenant.resend_unchanged_after
                )
                if record.sha256
                else None
            )
            document = _result_document(
                record,
                file.counts,
                listed(record.id) if file.counts.failed else (),
                identical=identical,
                snapshot=snapshot,
            )
            _archive_guarded(ctx, folder, file, document)
            faults.checkpoint("archived-one")


def _snapshot_document(ctx: BatchContext, view: BatchView) -> dict[str, object]:
    """The batch's missing users as each file's ``.result.json`` gives them: keys, no values."""
    c = view.missing
    users = [
        {"key": split_key(key), "state": state, **({"code": code} if code else {})}
        for key, state, code, _ in ctx.journal.missing.listed(view.id, LISTED_ROWS)
    ]
    return {
        "missing": c.total,
        "deactivated": c.deactivated,
        "refused": c.refused,
        "pending": c.pending,
        "users": users,
        "users_complete": len(users) == c.total,
    }


def _keep_missing_list(
    ctx: BatchContext, tenant: TenantConfig, folder: DropFolder, view: BatchView
) -> None:
    """The batch's list of missing users beside its first file (encrypted, for an encrypted one)."""
    data = missing_list(ctx, view)
    first = view.files[0].record
    if data is None or first.archive_name is None:
        return
    spool = ctx.state.spool(first.tenant, first.id)
    kept = kept_list(ctx.config, tenant, spool, first.name, data)
    if kept is not None:
        folder.write_bak(f"{first.archive_name}.missing.csv{kept[0]}", kept[1])


def _archive_guarded(
    ctx: BatchContext, folder: DropFolder, file: FileView, document: bytes
) -> None:
    """Archive one file; after ``STEP_ATTEMPTS`` failures, under its id alone.

    The customer's name is the only part of an archive name that can make it
    fail; the file id makes a name any folder takes.
    """
    try:
        _archive_one(ctx, folder, file, document)
    except OSError as exc:
        record = file.record
        attempt = ctx.journal.files.count_attempt(record.id)
        ctx.log.error(
            "file.step_failed",
            file=record.name,
            step="archive",
            attempt=attempt,
            error=exc.strerror or type(exc).__name__,
        )
        if attempt < STEP_ATTEMPTS:
            raise
        plain = record.id + (".refused" if record.state is FileState.REFUSED else "")
        ctx.journal.files.name_archive(record.id, plain, ctx.clock())
        record = dataclasses.replace(record, archive_name=plain)
        _archive_one(ctx, folder, dataclasses.replace(file, record=record), document)


def _archive_one(ctx: BatchContext, folder: DropFolder, file: FileView, document: bytes) -> None:
    record, counts = file.record, file.counts
    assert record.archive_name is not None  # noqa: S101 - named before archiving
    spool = ctx.state.spool(record.tenant, record.id)
    failures = ctx.state.failures(record.tenant, record.id)
    if record.state is FileState.REFUSED:
        folder.quarantine(record.name, record.archive_name)
    else:
        assert record.identity is not None  # noqa: S101 - claimed files have one
        folder.archive(record.name, record.identity, record.archive_name, spool)
    folder.write_bak(f"{record.archive_name}.result.json", document)
    if failures.exists():
        tenant = ctx.config.tenant(record.tenant)
        kept = kept_list(ctx.config, tenant, spool, record.name, failures.read_bytes())
        if kept is not None:  # an encrypted upload's list: never in plain
            folder.write_bak(f"{record.archive_name}.failures.csv{kept[0]}", kept[1])
    ctx.journal.files.mark_archived(record.id, ctx.clock())
    spool.unlink(missing_ok=True)
    failures.unlink(missing_ok=True)
    ctx.log.info(
        "file.completed",
        file=record.name,
        archived_as=record.archive_name,
        rows=counts.total,
        imported=counts.imported,
        unchanged=counts.unchanged,
        failed=counts.failed,
        pending=counts.pending,
        blank=record.rows_blank,
        code=record.code,
        duration=round(ctx.clock() - record.received_at, 3),
    )


def _result_document(
    record: FileRecord,
    counts: Counts,
    failures: Sequence[Failure],
    *,
    identical: tuple[str, float] | None,
    snapshot: dict[str, object] | None = None,
) -> bytes:
    """The machine-readable outcome of a file: counts and codes, no values.

    ``failures`` are the first ones (at most ``LISTED_ROWS`` rows), as the
    failure list holds them (``LISTED_ROWS`` of :mod:`watcher.core.reporting`);
    ``identical`` the earlier file with the same bytes, and when it came;
    ``snapshot`` the batch's missing users, for a full-snapshot tenant.
    """
    failed: dict[int, dict[str, list[str | None]]] = {}
    for row, field, code, _ in failures:
        entry = failed.setdefault(row, {"codes": [], "fields": []})
        entry["codes"].append(code)
        entry["fields"].append(field)
    if record.code is not None or (counts.failed and not counts.imported and not counts.unchanged):
        status = "not_imported"
    elif counts.pending:
        status = "pending"
    elif counts.failed:
        status = "partly_imported"
    elif counts.total and counts.unchanged == counts.total:
        status = "unchanged"
    else:
        status = "imported"
    document: dict[str, object] = {
        "file": shown(record.name),
        "archived_as": None if record.archive_name is None else shown(record.archive_name),
        "batch": record.batch_id,
        "received_at": _iso(record.received_at),
        "status": status,
        "encoding": record.encoding,
        "notes": list(record.notes),
        "sha256": record.sha256,
        "rows": {
            "total": counts.total,
            "imported": counts.imported,
            "unchanged": counts.unchanged,
            "failed": counts.failed,
            "pending": counts.pending,
            "blank": record.rows_blank,
        },
        "identical_to": None
        if identical is None
        else {"file": shown(identical[0]), "received_at": _iso(identical[1])},
        "file_error": None
        if record.code is None
        else {"code": record.code, "message": record.message},
        "failed_rows": [{"row": row, **entry} for row, entry in sorted(failed.items())],
        # Like the failure list, at most LISTED_ROWS rows; true when that is all of them.
        "failed_rows_complete": len(failed) == counts.failed or record.code is not None,
    }
    if snapshot is not None:
        document["snapshot"] = snapshot
    return (json.dumps(document, indent=2) + "\n").encode()


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
