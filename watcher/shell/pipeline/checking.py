"""The check-only lane: a file put in ``check/`` is validated and answered, never imported.

Customers learn whether a file is right before they send it for real. A file
finished in the drop folder's ``check/`` (the same readiness rules, the same
safe claim: no links, no FIFOs, the size limit) is validated against the
tenant's schema in force, and the answer goes two ways:

- beside it in ``check/``: ``<name>.check.json`` (counts, codes and fields,
  no values) and, when rows would fail, ``<name>.check.csv`` (those rows, as
  the failure report lists them); a name too long for the suffix is cut
  (:func:`watcher.core.names.answer_name`);
- by email to the tenant's addresses, the same CSV attached: answers that
  finish close together go out as one message (:mod:`watcher.shell.mail.checkmail`).

The file then moves into ``check/.bak/``. Nothing is journaled as a batch:
a check never touches the row state, the safeguard or the API; the answer's
counts (no values) are kept in the journal's ``checks`` for the page and
``watcher status``. The answer says what importing the file now would do:
users new, changed (by column), unchanged and missing, and whether the
safeguard would hold it (:mod:`watcher.shell.pipeline.preview`). One file that
cannot be answered never holds up another: it is tried again at the next
look and, failing twice, set aside in ``check/.bak/`` with its reason.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.answers import ANSWERS, check_document, reasons
from watcher.core.codes import Code
from watcher.core.failures import failure_list
from watcher.core.names import answer_name, archive_name, attachment_name, shown
from watcher.core.notices import CheckAnswer, changes_line
from watcher.core.reporting import LISTED_ROWS, common_reasons
from watcher.core.states import STEP_ATTEMPTS
from watcher.core.validation import validate
from watcher.errors import StateError
from watcher.shell.files import replace_file
from watcher.shell.intake.dropfolder import Busy, Claimed, DropFolder, Gone
from watcher.shell.journal import Check, new_id
from watcher.shell.mail import checkmail
from watcher.shell.pipeline.openpgp import read_upload, upload_encrypted
from watcher.shell.pipeline.preview import preview_changes
from watcher.shell.running.passes import where

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from watcher.config import TenantConfig
    from watcher.core.refusals import Refused
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.running.schemas import InForce

__all__ = ["check_files"]


def check_files(
    ctx: BatchContext,
    tenant: TenantConfig,
    names: Sequence[str],
    schema: InForce | None,
    tries: dict[tuple[str, int, int], int] | None = None,
) -> None:
    """Check each of ``names`` in the tenant's check folder, answer, archive; then the mail.

    Each file is on its own: one that raises is counted in ``tries`` (by its
    name and identity, so a new upload starts afresh), left for the next
    look, and after ``STEP_ATTEMPTS`` set aside in ``check/.bak`` with its
    reason; the others are answered all the same. On a stop request the
    rest wait where they are for the next start.
    """
    tries = {} if tries is None else tries
    if names and schema is not None:
        with DropFolder(tenant.check_dir) as folder:
            for name in names:
                if ctx.stop is not None and ctx.stop.is_set():
                    return
                try:
                    _check_one(ctx, tenant, folder, name, schema)
                except StateError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one file must not hold up the others
                    _failed(ctx, tenant, folder, name, exc, tries=tries)
    checkmail.flush(ctx, tenant)


def _check_one(
    ctx: BatchContext, tenant: TenantConfig, folder: DropFolder, name: str, schema: InForce
) -> None:
    check_id = new_id()
    spool = ctx.state.spool(tenant.name, f"check-{check_id}")
    result = folder.claim(name, spool, ctx.config.service.max_file_size)
    if isinstance(result, Busy | Gone):
        return
    try:
        if isinstance(result, Claimed):
            _answer(ctx, tenant, folder, result, spool=spool, schema=schema)
        else:
            _refused(ctx, tenant, folder, result, check_id)
    finally:
        spool.unlink(missing_ok=True)


def _failed(
    ctx: BatchContext,
    tenant: TenantConfig,
    folder: DropFolder,
    name: str,
    exc: Exception,
    *,
    tries: dict[tuple[str, int, int], int],
) -> None:
    """A check that raised: counted, and after the last try set aside and explained."""
    info = folder.lstat(name)
    key = (name, info.st_ino, info.st_mtime_ns) if info is not None else (name, 0, 0)
    attempt = tries[key] = tries.get(key, 0) + 1
    ctx.log.error(
        "check.failed",
        tenant=tenant.name,
        file=shown(name),
        error=type(exc).__name__,
        where=where(exc),
        attempt=attempt,
    )
    if attempt < STEP_ATTEMPTS or info is None:
        return
    del tries[key]
    message = (
        f"This file could not be checked: the import service failed on it {attempt} times, "
        "so it was set aside. Check that it is a users file as exported and that nothing in "
        "the check folder is in the way of its answer, then put it there again."
    )
    set_aside = archive_name(name, new_id(), ctx.clock(), refused=True)
    try:
        folder.quarantine(name, set_aside)
    except OSError as error:
        ctx.log.error("check.failed", tenant=tenant.name, file=shown(name),
                      error=type(error).__name__, where=where(error), attempt=attempt)  # fmt: skip
        return
    checkmail.add(
        ctx, tenant, new_id(), CheckAnswer(name=name, rows=0, failed=0, file_error=message), None
    )
    _keep(ctx, tenant, new_id(), name, code=Code.FILE_UNPROCESSABLE.value)
    ctx.log.error(
        "check.set_aside",
        tenant=tenant.name,
        file=shown(name),
        archived_as=shown(set_aside),
        code=Code.FILE_UNPROCESSABLE.value,
        attempts=attempt,
    )


def _answer(
    ctx: BatchContext,
    tenant: TenantConfig,
    folder: DropFolder,
    claimed: Claimed,
    *,
    spool: Path,
    schema: InForce,
) -> None:
    started = ctx.timer()
    name = claimed.name
    report = validate(read_upload(ctx.config, tenant, spool, name, schema.schema), schema.schema)
    # The same file (inode, time, bytes) checked again after a crash: the same id.
    check_id = f"{claimed.sha256[:16]}{claimed.identity.ino:x}{claimed.identity.mtime_ns:x}"
    listed = report.failures.filter(
        pl.col("row").is_in(report.failures["row"].unique().sort().head(LISTED_ROWS).implode())
    )
    rows = (
        failure_list(report.table, listed.iter_rows())
        if report.rows_failed and report.table
        else None
    )
    # Beside an encrypted file the list is never written in plain: the mail has it.
    beside = rows is not None and not upload_encrypted(spool, name)
    answer, answer_csv = answer_name(name, ANSWERS[0]), answer_name(name, ANSWERS[1])
    folder_fd = folder.fd
    changes = preview_changes(ctx, tenant, report, schema.schema)
    document = check_document(
        name,
        report,
        listed,
        schema_label=schema.schema.label,
        checked_at=ctx.clock(),
        in_list=rows.rows if rows else 0,
        changes=changes,
    )
    replace_file(folder_fd, answer, document)
    if rows is not None and beside:
        replace_file(folder_fd, answer_csv, rows.data)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(answer_csv, dir_fd=folder_fd)
    found = reasons(report.failures)
    checkmail.add(
        ctx,
        tenant,
        check_id,
        CheckAnswer(
            name=name,
            rows=report.rows_total,
            failed=report.rows_failed,
            file_error=" ".join(p.message for p in report.file_errors) or None,
            reasons=tuple(common_reasons(found)),
            answer=answer,
            answer_csv=answer_csv if rows is not None and beside else None,
            attachment=attachment_name(name) if rows is not None else None,
            changes=None if changes is None else changes_line(changes),
            notes=report.notes,
        ),
        rows.data if rows is not None else None,
    )
    folder.archive(name, claimed.identity, archive_name(name, check_id, ctx.clock()), spool)
    code = report.file_errors[0].code.value if report.file_errors else None
    _keep(ctx, tenant, check_id, name, rows=report.rows_total, failed=report.rows_failed, code=code)
    ctx.log.info(
        "check.answered",
        tenant=tenant.name,
        file=shown(name),
        rows=report.rows_total,
        failed=report.rows_failed,
        code=code,
        duration=round(ctx.timer() - started, 3),
    )


def _refused(
    ctx: BatchContext, tenant: TenantConfig, folder: DropFolder, refusal: Refused, check_id: str
) -> None:
    """An entry the lane may not read: set aside in ``check/.bak``, and the customer told."""
    folder.quarantine(refusal.name, archive_name(refusal.name, check_id, ctx.clock(), refused=True))
    answer = CheckAnswer(name=refusal.name, rows=0, failed=0, file_error=refusal.message)
    checkmail.add(ctx, tenant, check_id, answer, None)
    _keep(ctx, tenant, check_id, refusal.name, code=refusal.code.value)
    ctx.log.warning(
        "check.refused", tenant=tenant.name, file=shown(refusal.name), code=refusal.code.value
    )


def _keep(
    ctx: BatchContext,
    tenant: TenantConfig,
    check_id: str,
    name: str,
    *,
    rows: int = 0,
    failed: int = 0,
    code: str | None,
) -> None:
    """Keep the answer in the journal, for the page and ``watcher status``: counts, no values."""
    ctx.journal.checks.record(
        Check(
            id=check_id,
            tenant=tenant.name,
            name=name,
            checked_at=ctx.clock(),
            rows=rows,
            failed=failed,
            code=code,
        )
    )
