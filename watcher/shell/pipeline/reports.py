"""A batch's report step: the failure list of each file and, if anything failed, the email.

The failure list (the customer's own columns for each failed row, then
ours) is kept in the spool until the archive step puts it beside the file in
``.bak``; the email goes into the outbox and is journaled, once per batch,
under the batch's id. Delivering it is not this step's business: a mail
server that is down never holds up an import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.core.changes import user_key
from watcher.core.failures import failure_list
from watcher.core.missing import LIST_NAME, missing_csv
from watcher.core.names import attachment_name
from watcher.core.notices import hold_message, strays_id, strays_message, summary_message
from watcher.core.reporting import (
    ENCRYPTED,
    LISTED_ROWS,
    FailureList,
    FileSummary,
    SnapshotReport,
    needs_report,
    report_message,
)
from watcher.core.schema_parser import parse_schema
from watcher.core.states import Safeguard
from watcher.core.tables import Table
from watcher.shell.files import replace_file
from watcher.shell.mail.mailer import queue_message
from watcher.shell.pipeline.openpgp import SUFFIXES, encrypt_to, read_upload, upload_encrypted

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from watcher.config import TenantConfig
    from watcher.core.changes import ChangeSummary
    from watcher.core.records import BatchView, FileRecord
    from watcher.core.validation import ValidationReport
    from watcher.shell.journal import Failure
    from watcher.shell.pipeline.context import BatchContext

__all__ = ["missing_list", "write_hold_notice", "write_report", "write_strays_notice"]


def write_report(
    ctx: BatchContext,
    tenant: TenantConfig,
    view: BatchView,
    reports: dict[str, ValidationReport],
    listed: Callable[[str], list[Failure]],
) -> None:
    """Write each file's failure list, and the email if anything failed; idempotent.

    ``reports`` holds the files this run validated (their tables are used
    again); others are read again from the spool. ``listed`` gives a file's
    first failures, as many as a report lists.
    """
    summaries: list[FileSummary] = []
    attachments: dict[str, bytes] = {}
    for file in view.files:
        record, counts = file.record, file.counts
        failures_name = None
        rows_listed = counts.failed
        if record.code is None and counts.failed:
            report = reports.get(record.id)
            try:
                failure_list = _failure_csv(ctx, record, report.table if report else None, listed)
            except Exception as exc:  # noqa: BLE001 - the report goes out without this list
                ctx.log.error(
                    "file.step_failed",
                    file=record.name,
                    step="report",
                    attempt=1,
                    error=type(exc).__name__,
                )
            else:
                spool = ctx.state.failures(record.tenant, record.id)
                replace_file(spool.parent, spool.name, failure_list.data, mode=0o600)
                failures_name, data = _attachment(ctx, tenant, record, failure_list.data)
                if failures_name is not None:
                    attachments[failures_name] = data
                rows_listed = failure_list.rows
        summaries.append(
            FileSummary(
                name=record.name,
                received_at=record.received_at,
                counts=counts,
                file_error=record.message if record.code is not None else None,
                reasons=file.reasons,
                archive_name=record.archive_name,
                notes=record.notes,
                kept_suffix=_kept_suffix(ctx, tenant, record),
                failures_name=failures_name,
                listed=rows_listed if rows_listed < counts.failed else None,
                identical_to=ctx.journal.files.identical(
                    record, record.received_at - tenant.resend_unchanged_after
                )
                if record.sha256
                else None,
            )
        )
    service_address = ctx.config.email.sender if ctx.config.email else None
    snapshot = _snapshot(ctx, tenant, view, attachments)
    if needs_report(summaries, snapshot):
        message = report_message(
            tenant=tenant.name,
            batch_id=view.id,
            sender=tenant.reply_to,
            recipient=tenant.recipients,
            files=summaries,
            attachments=attachments,
            now=ctx.clock(),
            service_address=service_address,
            snapshot=snapshot,
        )
    elif summaries and (tenant.notify == "always" or view.batch.safeguard == Safeguard.APPROVED):
        # A held batch's notice promised a report either way: once approved, it gets one.
        message = summary_message(
            tenant=tenant.name,
            batch_id=view.id,
            sender=tenant.reply_to,
            recipient=tenant.recipients,
            files=summaries,
            now=ctx.clock(),
            service_address=service_address,
        )
    else:
        return
    queue_message(ctx, message, message_id=view.id, batch_id=view.id, tenant=tenant.name)


def missing_list(ctx: BatchContext, view: BatchView) -> bytes | None:
    """The batch's missing users as CSV (the first ``LISTED_ROWS``); None when none is missing."""
    if not view.missing.total:
        return None
    readable = [f.record for f in view.files if f.record.schema_digest is not None]
    if not readable:
        return None
    digest = readable[0].schema_digest
    assert digest is not None  # noqa: S101 - filtered above
    key = user_key(parse_schema(ctx.journal.batches.schema_text(digest)))
    return missing_csv(key, ctx.journal.missing.listed(view.id, LISTED_ROWS))


def _snapshot(
    ctx: BatchContext, tenant: TenantConfig, view: BatchView, attachments: dict[str, bytes]
) -> SnapshotReport | None:
    """The report's account of the missing users; their list joins ``attachments``."""
    data = missing_list(ctx, view)
    if data is None:
        return None
    name, data = _sealed(ctx, tenant, LIST_NAME, data, about=LIST_NAME)
    if name is not None:
        attachments[name] = data
    return SnapshotReport(
        counts=view.missing,
        # Reported users are in none of these states: they were never to be deactivated.
        deactivate=bool(view.missing.deactivated + view.missing.refused + view.missing.pending),
        listed=min(view.missing.total, LISTED_ROWS),
        list_name=name,
    )


def _kept_suffix(ctx: BatchContext, tenant: TenantConfig, record: FileRecord) -> str | None:
    """How .bak keeps the file's list (as :func:`.openpgp.kept_list` will): plain, .gpg, or not."""
    if not upload_encrypted(ctx.state.spool(record.tenant, record.id), record.name):
        return ""
    if tenant.signed_by is None or ctx.config.service.gnupg_home is None:
        return None
    return ENCRYPTED


def _attachment(
    ctx: BatchContext, tenant: TenantConfig, record: FileRecord, data: bytes
) -> tuple[str | None, bytes]:
    """A file's list of rows not imported as attached: plain, or encrypted to the customer."""
    upload = record.name
    if upload.lower().endswith(SUFFIXES):  # users.csv.pgp: failed-users.csv, not .csv.csv
        upload = upload[: upload.rindex(".")]
    return _sealed(ctx, tenant, attachment_name(upload), data, about=record.name)


def _sealed(
    ctx: BatchContext, tenant: TenantConfig, name: str, data: bytes, *, about: str
) -> tuple[str | None, bytes]:
    """A list as attached: plain, or encrypted to the customer's key when they asked.

    Never in plain when the customer asked otherwise: unencrypted, it is not
    attached (None), and ``report.not_encrypted`` names ``about``.
    """
    if not tenant.encrypt_reports or tenant.signed_by is None:
        return name, data
    home = ctx.config.service.gnupg_home
    sealed = encrypt_to(home, tenant.signed_by, data) if home is not None else None
    if sealed is None:
        ctx.log.error("report.not_encrypted", file=about, key=str(tenant.signed_by))
        return None, b""
    return f"{name}{ENCRYPTED}", sealed


def write_hold_notice(
    ctx: BatchContext, tenant: TenantConfig, view: BatchView, changes: ChangeSummary
) -> None:
    """Tell the customer their import was held, once per batch, through the outbox."""
    received = min((f.record.received_at for f in view.files), default=ctx.clock())
    message = hold_message(
        tenant=tenant.name,
        batch_id=view.id,
        sender=tenant.reply_to,
        recipient=tenant.recipients,
        files=[(f.record.name, f.counts.total) for f in view.files if f.record.code is None],
        changes=changes,
        allowed=tenant.safeguard_changed,
        received_at=received,
        now=ctx.clock(),
        service_address=ctx.config.email.sender if ctx.config.email else None,
        contact=ctx.config.email.contact if ctx.config.email else None,
    )
    message_id = f"{view.id}.held"
    queue_message(ctx, message, message_id=message_id, batch_id=view.id, tenant=tenant.name)


def write_strays_notice(ctx: BatchContext, tenant: TenantConfig, files: Sequence[str]) -> None:
    """Tell the customer of files put in a folder inside the drop folder, once."""
    message = strays_message(
        tenant=tenant.name,
        sender=tenant.reply_to,
        recipient=tenant.recipients,
        files=files,
        now=ctx.clock(),
        service_address=ctx.config.email.sender if ctx.config.email else None,
    )
    queue_message(ctx, message, message_id=strays_id(files), batch_id="", tenant=tenant.name)


def _failure_csv(
    ctx: BatchContext,
    record: FileRecord,
    table: Table | None,
    listed: Callable[[str], list[Failure]],
) -> FailureList:
    if table is None:  # validated by an earlier run: read again (decrypted, if it was)
        spool = ctx.state.spool(record.tenant, record.id)
        digest = record.schema_digest
        assert digest is not None  # noqa: S101 - a validated file has one
        schema = parse_schema(ctx.journal.batches.schema_text(digest))
        tenant = ctx.config.tenant(record.tenant)
        read = read_upload(ctx.config, tenant, spool, record.name, schema)
        assert isinstance(read, Table)  # noqa: S101 - it validated with row failures
        table = read
    return failure_list(table, listed(record.id))
