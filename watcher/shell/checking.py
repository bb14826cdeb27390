"""The check-only lane: a file put in ``check/`` is validated and answered, never imported.

Customers learn whether a file is right before they send it for real. A file
finished in the drop folder's ``check/`` (the same readiness rules, the same
safe claim: no links, no FIFOs, the size limit) is validated against the
tenant's schema in force, and the answer goes two ways:

- beside it in ``check/``: ``<name>.check.json`` (counts, codes and fields,
  no values) and, when rows would fail, ``<name>.check.csv`` (those rows, as
  the failure report lists them);
- by email to the tenant's addresses, the same CSV attached.

The file then moves into ``check/.bak/``. Nothing is journaled as a batch:
a check never touches the row state, the safeguard or the API. Its email is
queued under an id made from the file's identity and hash, so a check
repeated after a crash queues it once.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import time
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.names import archive_name, attachment_name, shown
from watcher.core.notices import check_message
from watcher.core.reading import Table, read_table
from watcher.core.records import Counts, Reason
from watcher.core.reporting import LISTED_ROWS, FileSummary, failure_csv
from watcher.core.validation import FIRST_DATA_ROW, ValidationReport, validate
from watcher.shell.dropfolder import Busy, Claimed, DropFolder, Gone
from watcher.shell.files import replace_file
from watcher.shell.journal import new_id
from watcher.shell.mailer import write_outbox

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.config import TenantConfig
    from watcher.core.refusals import Refused
    from watcher.shell.context import BatchContext
    from watcher.shell.schemas import InForce

__all__ = ["ANSWERS", "check_files", "ensure_check_folder", "is_answer"]

# What the lane writes beside a checked file: never taken for an upload.
ANSWERS = (".check.json", ".check.csv")
_ACL_ACCESS = "system.posix_acl_access"
_ACL_DEFAULT = "system.posix_acl_default"
# POSIX ACL entries (linux/posix_acl_xattr.h): tag, permissions, id.
_ACL_VERSION, _USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 2, 0x01, 0x02, 0x04, 0x10, 0x20
_UNDEFINED = 0xFFFFFFFF


def is_answer(name: str) -> bool:
    """Whether ``name`` is one of the lane's own answers."""
    return name.endswith(ANSWERS)


def ensure_check_folder(tenant: TenantConfig, log: FilteringBoundLogger) -> bool:
    """Make ``check/`` when missing, usable by the customer; whether it is there.

    Onboarding makes it as it makes the drop folder: the customer's, shared
    with the service's group. The service may not give a folder away, so one
    it makes is its own, and the customer who owns the drop folder gets the
    same rights through an ACL (as root, it simply gives the folder away).
    """
    folder = tenant.check_dir
    try:
        if folder.is_dir():
            return True
        owner = tenant.drop_dir.stat()
        folder.mkdir(mode=0o2770)
    except FileExistsError:
        return folder.is_dir()
    except OSError as exc:
        log.error("check.folder_unusable", tenant=tenant.name, error=exc.strerror)
        return False
    try:
        os.chown(folder, owner.st_uid, owner.st_gid)
    except PermissionError:
        try:
            _share(folder, owner.st_uid)
        except OSError as exc:
            log.error("check.folder_unusable", tenant=tenant.name, error=exc.strerror)
            return True
    folder.chmod(0o2770)
    log.info("check.folder_made", tenant=tenant.name, path=str(folder))
    return True


def _share(folder: Path, uid: int) -> None:
    """Give ``uid`` read, write and search on ``folder``, and on what is made in it."""
    rwx = 7
    entries = [
        (_USER_OBJ, rwx, _UNDEFINED),
        (_USER, rwx, uid),
        (_GROUP_OBJ, rwx, _UNDEFINED),
        (_MASK, rwx, _UNDEFINED),
        (_OTHER, 0, _UNDEFINED),
    ]
    acl = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    os.setxattr(folder, _ACL_ACCESS, acl)
    os.setxattr(folder, _ACL_DEFAULT, acl)


def check_files(
    ctx: BatchContext, tenant: TenantConfig, names: Sequence[str], schema: InForce
) -> None:
    """Check each of ``names`` in the tenant's check folder, answer, and archive it."""
    with DropFolder(tenant.check_dir) as folder:
        for name in names:
            check_id = new_id()
            spool = ctx.state.spool(tenant.name, f"check-{check_id}")
            result = folder.claim(name, spool, ctx.config.service.max_file_size)
            if isinstance(result, Busy | Gone):
                continue
            try:
                if isinstance(result, Claimed):
                    _answer(ctx, tenant, folder, result, spool=spool, schema=schema)
                else:
                    _refused(ctx, tenant, folder, result, check_id)
            finally:
                spool.unlink(missing_ok=True)


def _answer(
    ctx: BatchContext,
    tenant: TenantConfig,
    folder: DropFolder,
    claimed: Claimed,
    *,
    spool: Path,
    schema: InForce,
) -> None:
    started = time.monotonic()
    report = validate(read_table(spool, max_rows=ctx.config.service.max_rows), schema.schema)
    name = claimed.name
    # The same file (inode, time, bytes) checked again after a crash: the same id.
    check_id = f"{claimed.sha256[:16]}{claimed.identity.ino:x}{claimed.identity.mtime_ns:x}"
    listed = report.failures.filter(
        pl.col("row").is_in(report.failures["row"].unique().sort().head(LISTED_ROWS).implode())
    )
    csv = _failures_csv(report.table, listed) if report.rows_failed and report.table else None
    folder_fd = folder.fd
    replace_file(folder_fd, f"{name}.check.json", _document(name, report, listed, schema, ctx))
    if csv is not None:
        replace_file(folder_fd, f"{name}.check.csv", csv)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{name}.check.csv", dir_fd=folder_fd)
    error = " ".join(p.message for p in report.file_errors) or None
    summary = FileSummary(
        name=name,
        received_at=ctx.clock(),
        counts=Counts(
            total=report.rows_total, imported=report.rows_valid, failed=report.rows_failed
        ),
        file_error=error,
        reasons=_reasons(report.failures),
    )
    attachment = (attachment_name(name), csv) if csv is not None else None
    _send(ctx, tenant, check_id, summary, attachment)
    folder.archive(name, claimed.identity, archive_name(name, check_id, ctx.clock()), spool)
    ctx.log.info(
        "check.answered",
        tenant=tenant.name,
        file=name,
        rows=report.rows_total,
        failed=report.rows_failed,
        code=report.file_errors[0].code.value if report.file_errors else None,
        duration=round(time.monotonic() - started, 3),
    )


def _refused(
    ctx: BatchContext, tenant: TenantConfig, folder: DropFolder, refusal: Refused, check_id: str
) -> None:
    """An entry the lane may not read: set aside in ``check/.bak``, and the customer told."""
    folder.quarantine(refusal.name, archive_name(refusal.name, check_id, ctx.clock(), refused=True))
    summary = FileSummary(
        name=refusal.name, received_at=ctx.clock(), counts=Counts(), file_error=refusal.message
    )
    _send(ctx, tenant, check_id, summary, None)
    ctx.log.warning("check.refused", tenant=tenant.name, file=refusal.name, code=refusal.code.value)


def _send(
    ctx: BatchContext,
    tenant: TenantConfig,
    check_id: str,
    summary: FileSummary,
    attachment: tuple[str, bytes] | None,
) -> None:
    message = check_message(
        tenant=tenant.name,
        check_id=check_id,
        sender=tenant.reply_to,
        recipient=tenant.recipients,
        file=summary,
        attachment=attachment,
        now=ctx.clock(),
        service_address=ctx.config.email.sender if ctx.config.email else None,
    )
    message_id = f"{check_id}.check"
    path = write_outbox(ctx.state.outbox, message_id, message)
    ctx.journal.messages.queue(
        message_id=message_id,
        batch_id=message_id,
        tenant=tenant.name,
        path=str(path),
        now=ctx.clock(),
    )
    ctx.log.info("mail.queued", message_id=message_id, attachments=int(attachment is not None))


def _reasons(failures: pl.DataFrame) -> tuple[Reason, ...]:
    """A check's failures counted by field and code, most frequent first."""
    if failures.is_empty():
        return ()
    counted = (
        failures.group_by("field", "code")
        .agg(pl.len().alias("count"), pl.col("message").cast(pl.String).min().alias("example"))
        .sort(["count", "field", "code"], descending=[True, False, False], nulls_last=False)
    )
    return tuple(
        Reason(count=count, field=field, code=str(code), example=str(example))
        for field, code, count, example in counted.select(
            "field", "code", "count", "example"
        ).iter_rows()
    )


def _failures_csv(table: Table, listed: pl.DataFrame) -> bytes:
    by_row: dict[int, list[tuple[str | None, str, str]]] = {}
    for row, field, code, message in listed.iter_rows():
        by_row.setdefault(row, []).append((field, code, message))
    numbers = sorted(by_row)
    values = table.frame.gather([n - FIRST_DATA_ROW for n in numbers]).rows()
    return failure_csv(table.headers, zip(numbers, values, strict=True), by_row)


def _document(
    name: str,
    report: ValidationReport,
    listed: pl.DataFrame,
    schema: InForce,
    ctx: BatchContext,
) -> bytes:
    """The check's answer for scripts: counts, codes and fields, no values."""
    failed: dict[int, dict[str, list[str | None]]] = {}
    for row, field, code, _ in listed.iter_rows():
        entry = failed.setdefault(row, {"codes": [], "fields": []})
        entry["codes"].append(code)
        entry["fields"].append(field)
    document = {
        "file": shown(name),
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ctx.clock())),
        "schema": schema.schema.label,
        "status": "not_importable"
        if report.file_errors
        else "would_partly_fail"
        if report.rows_failed
        else "would_import",
        "encoding": report.encoding,
        "rows": {
            "total": report.rows_total,
            "valid": report.rows_valid,
            "failed": report.rows_failed,
            "blank": report.rows_blank,
        },
        "file_error": None
        if not report.file_errors
        else {
            "code": report.file_errors[0].code.value,
            "message": " ".join(p.message for p in report.file_errors),
        },
        "reasons": [
            {"field": r.field, "code": r.code, "count": r.count} for r in _reasons(report.failures)
        ],
        "failed_rows": [{"row": row, **entry} for row, entry in sorted(failed.items())],
        "failed_rows_complete": len(failed) == report.rows_failed,
    }
    return (json.dumps(document, indent=2) + "\n").encode()
