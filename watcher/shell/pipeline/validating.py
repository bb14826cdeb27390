"""The first half of a batch's import step: validating each claimed file.

Every row is journaled as pending or failed, with its reasons, before any is
sent. A file whose validation fails (raises, or kills the process: the OOM
killer, a crash in a library) ``STEP_ATTEMPTS`` times is set aside with a
file-level failure instead: one upload must never block a tenant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from watcher.core.codes import Code
from watcher.core.states import STEP_ATTEMPTS, FileState
from watcher.core.validation import FIRST_DATA_ROW, ValidationReport, validate
from watcher.shell import faults
from watcher.shell.pipeline.openpgp import read_upload

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from watcher.core.records import BatchView, FileRecord
    from watcher.core.schema import Schema
    from watcher.shell.pipeline.context import BatchContext

__all__ = ["validate_claimed", "validate_file"]

_SLICE = 50_000


def validate_claimed(
    ctx: BatchContext,
    view: BatchView,
    schema_of: Callable[[FileRecord], Schema],
    reports: dict[str, ValidationReport],
) -> list[FileRecord]:
    """Validate the batch's claimed files; the files with rows to send.

    ``reports`` gains the report of every file validated, for the failure report.
    """
    to_send: list[FileRecord] = []
    for file in view.files:
        record = file.record
        if record.state is FileState.CLAIMED:
            started = ctx.timer()
            report = _validate_once_more(ctx, record, schema_of(record))
            if report is None:
                continue
            reports[record.id] = report
            _journal_validation(ctx, record, report, started)
            if not report.file_errors:
                to_send.append(record)
        elif record.state is FileState.VALIDATED and record.code is None:
            to_send.append(record)
    faults.checkpoint("validated")
    return to_send


def validate_file(ctx: BatchContext, record: FileRecord, schema: Schema) -> ValidationReport:
    """Validate a claimed file's spool copy (decrypted, if it is encrypted) with its schema."""
    spool = ctx.state.spool(record.tenant, record.id)
    tenant = ctx.config.tenant(record.tenant)
    return validate(read_upload(ctx.config, tenant, spool, record.name, schema), schema)


def _validate_once_more(
    ctx: BatchContext, record: FileRecord, schema: Schema
) -> ValidationReport | None:
    """Validate a claimed file, unless that already failed ``STEP_ATTEMPTS`` times.

    Each try is journaled before it starts, so a file that kills the process
    (the OOM killer, a crash in a library) is counted as surely as one that
    raises. After the last try the file is set aside with a file-level
    failure instead, and the batch goes on: one upload must never block a
    tenant. None when it was set aside.
    """
    attempt = ctx.journal.files.count_attempt(record.id)
    if attempt > STEP_ATTEMPTS:
        _set_aside_unprocessable(ctx, record, attempts=attempt - 1)
        return None
    faults.checkpoint("validating")
    try:
        return validate_file(ctx, record, schema)
    except Exception as exc:
        ctx.log.error(
            "file.step_failed",
            file=record.name,
            step="validate",
            attempt=attempt,
            error=type(exc).__name__,
        )
        if attempt < STEP_ATTEMPTS:
            raise
    _set_aside_unprocessable(ctx, record, attempts=attempt)
    return None


def _set_aside_unprocessable(ctx: BatchContext, record: FileRecord, *, attempts: int) -> None:
    message = (
        "This file could not be processed: the import service failed while reading it "
        f"{attempts} times, so it was set aside and not imported. Check that it is a users "
        "file as exported, or split it into smaller files, and upload it again."
    )
    ctx.journal.rows.record_validation(
        record.id,
        encoding=None,
        rows_blank=0,
        file_error=(Code.FILE_UNPROCESSABLE.value, message),
        valid_rows=[],
        failed_rows=[],
        failures=[],
        now=ctx.clock(),
    )
    ctx.log.error(
        "file.set_aside", file=record.name, code=Code.FILE_UNPROCESSABLE.value, attempts=attempts
    )


def _journal_validation(
    ctx: BatchContext, record: FileRecord, report: ValidationReport, started: float
) -> None:
    error = None
    if report.file_errors:
        error = (report.file_errors[0].code.value, " ".join(p.message for p in report.file_errors))
        valid: Iterable[int] = ()
        failed = _numbers(_all_rows(report))
        failures: Iterable[tuple[int, str | None, str, str]] = ()
    else:
        assert report.valid is not None  # noqa: S101 - readable tables have it
        # Generators over slices: a file of millions of failing rows must not
        # become millions of Python objects at once.
        first = report.table.first_row if report.table is not None else FIRST_DATA_ROW
        valid = _numbers(report.valid.arg_true() + first)
        failed = _numbers(report.failures["row"].unique().sort())
        failures = (
            row for chunk in report.failures.iter_slices(_SLICE) for row in chunk.iter_rows()
        )
    ctx.journal.rows.record_validation(
        record.id,
        encoding=report.encoding,
        rows_blank=report.rows_blank,
        file_error=error,
        valid_rows=valid,
        failed_rows=failed,
        failures=failures,
        now=ctx.clock(),
        notes=report.notes,
    )
    ctx.log.info(
        "file.validated",
        file=record.name,
        rows=report.rows_total,
        valid=report.rows_valid,
        failed=report.rows_failed,
        blank=report.rows_blank,
        encoding=report.encoding,
        code=error[0] if error else None,
        duration=round(ctx.timer() - started, 3),
    )


def _all_rows(report: ValidationReport) -> pl.Series:
    """Every non-blank row of a readable file (all fail with its file error)."""
    if report.table is None:
        return pl.Series(dtype=pl.Int64)
    return report.table.blank.not_().arg_true() + report.table.first_row


def _numbers(series: pl.Series) -> Iterator[int]:
    """The values of ``series``, a slice at a time."""
    for start in range(0, series.len(), _SLICE):
        yield from series.slice(start, _SLICE).to_list()
