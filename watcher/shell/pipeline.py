"""One batch, from the drop folder to the archive, in journaled steps.

The steps, each recorded before the next begins, so that a batch killed at
any point resumes where it stopped:

1. claim: each file is copied into the spool (or refused) and journaled;
2. validate: every row is journaled as pending or failed, with reasons;
3. import: pending rows go to the API or the embedded store, outcomes
   journaled as they come; if the API is unavailable or refuses the token,
   the batch stops here and its rows stay pending for the next run;
4. report: if anything failed, one email is written to the outbox;
5. archive: each file moves into its ``.bak/`` with a result file.

Delivering the outbox is separate (:meth:`Pipeline.deliver_mail`), so a mail
server that is down never holds up an import.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.codes import Code
from watcher.core.names import archive_name, attachment_name, shown
from watcher.core.reading import Table, read_table
from watcher.core.reporting import (
    LISTED_ROWS,
    FileSummary,
    Reason,
    failure_csv,
    needs_report,
    report_message,
)
from watcher.core.schema_parser import parse_schema
from watcher.core.validation import FIRST_DATA_ROW, ValidationReport, validate
from watcher.errors import SinkUnavailableError
from watcher.shell import faults, logs
from watcher.shell.api import ApiSink
from watcher.shell.dropfolder import Busy, Claimed, DropFolder, Gone, Identity, Refused
from watcher.shell.journal import Counts, FileRecord, Journal, new_id
from watcher.shell.mailer import Mailer, write_outbox
from watcher.shell.userstore import UserStore

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    import httpx
    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config, TenantConfig
    from watcher.core.schema import Schema
    from watcher.shell.schemas import InForce
    from watcher.shell.sinks import Outcome, Sink

_FLUSH_EVERY = 500
_SLICE = 50_000
# Tries at one step for one file before it is set aside (see _validate_once_more).
MAX_ATTEMPTS = 2


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """How a batch ended: complete, or stopped with rows pending and why."""

    batch_id: str
    tenant: str
    complete: bool
    files: int
    counts: Counts
    reason: str | None = None


class Pipeline:
    """Runs batches for the tenants of one configuration."""

    def __init__(
        self,
        config: Config,
        journal: Journal,
        *,
        log: FilteringBoundLogger | None = None,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.log = log or logs.get_logger()
        self.clock = clock
        self.stop = stop
        self.transport = transport
        self._schemas: dict[str, Schema] = {}

    # Paths in the state folder.

    def spool(self, tenant: str, file_id: str, suffix: str = ".csv") -> Path:
        """Where a claimed file's copy (and its failure list) is kept."""
        return self.config.service.state_dir / "spool" / tenant / f"{file_id}{suffix}"

    def start_up(self) -> None:
        """Put the state folder in order after whatever stopped the last run.

        Call with the state folder's lock held, before any batch runs.
        """
        self.clean_spool()
        requeued = self.journal.requeue_sending()
        if requeued:
            self.log.warning("mail.requeued", messages=requeued)

    def clean_spool(self) -> int:
        """Remove spool copies the journal does not know (a crash before journaling)."""
        root = self.config.service.state_dir / "spool"
        removed = 0
        for path in root.glob("*/*"):
            file_id = path.name.split(".", 1)[0]
            try:
                record = self.journal.file(file_id)
            except KeyError:
                path.unlink(missing_ok=True)
                removed += 1
                continue
            if record.state == "archived":
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    # Step 1: claim.

    def claim(
        self, tenant: TenantConfig, names: list[str], *, schema: InForce | None = None
    ) -> str | None:
        """Claim ``names`` from the tenant's drop folder as one new batch.

        Names already claimed by an unfinished batch (the same file, by inode
        and change time) are left to that batch. ``schema`` is the schema in
        force; without it the tenant's schema file is read now. Returns the
        batch id, or None when nothing was taken.
        """
        if schema is None:
            text = tenant.schema.read_bytes()
            parsed = parse_schema(text, source=str(tenant.schema))
        else:
            text, parsed = schema.text, schema.schema
        return self._claim(tenant, names, text, parsed)

    def set_aside(self, tenant: TenantConfig, refusals: list[Refused]) -> str | None:
        """Quarantine entries as one batch, each with its reason (interrupted uploads)."""
        if not refusals:
            return None
        batch_id = self.journal.open_batch(tenant.name, self.clock())
        for refused in refusals:
            self._record_refusal(batch_id, tenant.name, new_id(), refused)
        self.journal.set_batch_state(batch_id, "importing", self.clock())
        return batch_id

    def _claim(
        self, tenant: TenantConfig, names: list[str], text: bytes, schema: Schema
    ) -> str | None:
        busy = self.journal.claimed_entries(tenant.name)
        batch_id: str | None = None
        with DropFolder(tenant.drop_dir) as folder:
            for name in names:
                current = folder.lstat(name)
                if (
                    current is not None
                    and (
                        name,
                        current.st_dev,
                        current.st_ino,
                        current.st_mtime_ns,
                    )
                    in busy
                ):
                    continue
                file_id = new_id()
                result = folder.claim(
                    name, self.spool(tenant.name, file_id), self.config.service.max_file_size
                )
                if isinstance(result, Busy | Gone):
                    if isinstance(result, Busy):
                        self.log.info("file.changing", tenant=tenant.name, file=name)
                    else:
                        self.log.info("file.gone", tenant=tenant.name, file=name)
                    continue
                if batch_id is None:
                    batch_id = self.journal.open_batch(tenant.name, self.clock())
                    self.journal.remember_schema(schema.digest, text)
                if isinstance(result, Claimed):
                    self._record_claim(batch_id, tenant.name, file_id, result, schema)
                else:
                    self._record_refusal(batch_id, tenant.name, file_id, result)
        if batch_id is not None:
            self.journal.set_batch_state(batch_id, "importing", self.clock())
            faults.checkpoint("claimed")
        return batch_id

    def _record_claim(
        self, batch_id: str, tenant: str, file_id: str, claimed: Claimed, schema: Schema
    ) -> None:
        self.journal.add_claimed(
            batch_id=batch_id,
            tenant=tenant,
            file_id=file_id,
            name=claimed.name,
            identity=claimed.identity,
            sha256=claimed.sha256,
            schema_digest=schema.digest,
            now=self.clock(),
        )
        self.log.info(
            "file.claimed",
            tenant=tenant,
            batch_id=batch_id,
            file=claimed.name,
            bytes=claimed.identity.size,
            sha256=claimed.sha256,
            schema=schema.label,
        )

    def _record_refusal(self, batch_id: str, tenant: str, file_id: str, refused: Refused) -> None:
        self.journal.add_refused(
            batch_id=batch_id,
            tenant=tenant,
            file_id=file_id,
            name=refused.name,
            code=refused.code.value,
            message=refused.message,
            now=self.clock(),
        )
        self.log.warning(
            "file.refused",
            tenant=tenant,
            batch_id=batch_id,
            file=refused.name,
            code=refused.code.value,
            kind=refused.kind,
        )

    # Running a batch to its end.

    def run(self, batch_id: str) -> BatchResult:
        """Take a batch as far as it can go; safe to call again after a crash."""
        batch = self.journal.batch(batch_id)
        tenant = self.config.tenant(batch.tenant)
        logs.bind(tenant=tenant.name, batch_id=batch_id)
        started = time.monotonic()
        # Validation reports of this run, kept for the failure report.
        reports: dict[str, ValidationReport] = {}
        try:
            state = batch.state
            if state == "claiming":
                state = self._advance(batch_id, "importing")
            if state == "importing":
                reason = self._import(tenant, batch_id, reports)
                if reason is not None:
                    self.journal.note_stopped(batch_id, reason, self.clock())
                    counts = self._batch_counts(batch_id)
                    self.log.warning(
                        "batch.incomplete",
                        reason=reason,
                        rows=counts.total,
                        imported=counts.imported,
                        failed=counts.failed,
                        pending=counts.pending,
                    )
                    return self._result(batch_id, complete=False, reason=reason)
                faults.checkpoint("imported")
                state = self._advance(batch_id, "reporting")
            if state == "reporting":
                self._report(tenant, batch_id, reports)
                faults.checkpoint("reported")
                state = "archiving"
            if state == "archiving":
                self._archive(tenant, batch_id)
                self._advance(batch_id, "done")
                faults.checkpoint("archived")
            result = self._result(batch_id, complete=True)
            self.log.info(
                "batch.completed",
                files=result.files,
                rows=result.counts.total,
                imported=result.counts.imported,
                failed=result.counts.failed,
                pending=result.counts.pending,
                duration=round(time.monotonic() - started, 3),
            )
            return result
        finally:
            logs.unbind("tenant", "batch_id")

    def resume(self, tenant: str | None = None) -> list[BatchResult]:
        """Run every unfinished batch (of one tenant, or all), oldest first."""
        return [self.run(b.id) for b in self.journal.unfinished_batches(tenant)]

    def deliver_mail(self) -> int:
        """Send what the outbox holds; how many messages still wait."""
        mailer = Mailer(self.config.email, log=self.log)
        return mailer.deliver(self.journal, self.config.service.state_dir / "sent")

    def _advance(self, batch_id: str, state: str) -> str:
        self.journal.set_batch_state(batch_id, state, self.clock())
        return state

    def _result(self, batch_id: str, *, complete: bool, reason: str | None = None) -> BatchResult:
        batch = self.journal.batch(batch_id)
        return BatchResult(
            batch_id=batch_id,
            tenant=batch.tenant,
            complete=complete,
            files=len(self.journal.files(batch_id)),
            counts=self._batch_counts(batch_id),
            reason=reason,
        )

    def _batch_counts(self, batch_id: str) -> Counts:
        totals = [self.journal.counts(f.id) for f in self.journal.files(batch_id)]
        return Counts(
            total=sum(c.total for c in totals),
            imported=sum(c.imported for c in totals),
            failed=sum(c.failed for c in totals),
            pending=sum(c.pending for c in totals),
        )

    # Steps 2 and 3: validate and import.

    def schema(self, digest: str) -> Schema:
        """The schema a file was claimed under, from the journal."""
        if digest not in self._schemas:
            self._schemas[digest] = parse_schema(self.journal.schema_text(digest))
        return self._schemas[digest]

    def _validate(self, record: FileRecord) -> ValidationReport:
        """Validate a claimed file's spool copy with the schema it was claimed under."""
        assert record.schema_digest is not None  # noqa: S101 - claimed files have one
        return validate(
            read_table(self.spool(record.tenant, record.id), max_rows=self.config.service.max_rows),
            self.schema(record.schema_digest),
        )

    def _validate_once_more(self, record: FileRecord) -> ValidationReport | None:
        """Validate a claimed file, unless that already failed ``MAX_ATTEMPTS`` times.

        Each try is journaled before it starts, so a file that kills the
        process (the OOM killer, a crash in a library) is counted as surely
        as one that raises. After the last try the file is set aside with a
        file-level failure instead, and the batch goes on: one upload must
        never block a tenant. None when it was set aside.
        """
        attempt = self.journal.count_attempt(record.id)
        if attempt > MAX_ATTEMPTS:
            self._set_aside_unprocessable(record, attempts=attempt - 1)
            return None
        faults.checkpoint("validating")
        try:
            return self._validate(record)
        except Exception as exc:
            self.log.error(
                "file.step_failed",
                file=record.name,
                step="validate",
                attempt=attempt,
                error=type(exc).__name__,
            )
            if attempt < MAX_ATTEMPTS:
                raise
        self._set_aside_unprocessable(record, attempts=attempt)
        return None

    def _set_aside_unprocessable(self, record: FileRecord, *, attempts: int) -> None:
        message = (
            "This file could not be processed: the import service failed while reading it "
            f"{attempts} times, so it was set aside and not imported. Check that it is a users "
            "file as exported, or split it into smaller files, and upload it again."
        )
        self.journal.record_validation(
            record.id,
            encoding=None,
            rows_blank=0,
            file_error=(Code.FILE_UNPROCESSABLE.value, message),
            valid_rows=[],
            failed_rows=[],
            failures=[],
            now=self.clock(),
        )
        self.log.error(
            "file.set_aside",
            file=record.name,
            code=Code.FILE_UNPROCESSABLE.value,
            attempts=attempts,
        )

    def _journal_validation(
        self, record: FileRecord, report: ValidationReport, started: float
    ) -> None:
        error = None
        if report.file_errors:
            error = (
                report.file_errors[0].code.value,
                " ".join(p.message for p in report.file_errors),
            )
            valid: Iterable[int] = ()
            failed = _numbers(_all_rows(report))
            failures: Iterable[tuple[int, str | None, str, str]] = ()
        else:
            assert report.valid is not None  # noqa: S101 - readable tables have it
            # Generators over slices: a file of millions of failing rows must
            # not become millions of Python objects at once.
            valid = _numbers(report.valid.arg_true() + FIRST_DATA_ROW)
            failed = _numbers(report.failures["row"].unique().sort())
            failures = (
                row for chunk in report.failures.iter_slices(_SLICE) for row in chunk.iter_rows()
            )
        self.journal.record_validation(
            record.id,
            encoding=report.encoding,
            rows_blank=report.rows_blank,
            file_error=error,
            valid_rows=valid,
            failed_rows=failed,
            failures=failures,
            now=self.clock(),
        )
        self.log.info(
            "file.validated",
            file=record.name,
            rows=report.rows_total,
            valid=report.rows_valid,
            failed=report.rows_failed,
            blank=report.rows_blank,
            encoding=report.encoding,
            code=error[0] if error else None,
            duration=round(time.monotonic() - started, 3),
        )

    def _import(
        self, tenant: TenantConfig, batch_id: str, reports: dict[str, ValidationReport]
    ) -> str | None:
        """Validate what is claimed and import what is pending; why it stopped, if it did.

        ``reports`` gains the report of every file validated.
        """
        for record in self.journal.files(batch_id):
            if record.state == "claimed":
                started = time.monotonic()
                report = self._validate_once_more(record)
                if report is not None:
                    reports[record.id] = report
                    self._journal_validation(record, report, started)
        faults.checkpoint("validated")
        for record in self.journal.files(batch_id):
            if record.state != "validated" or record.code is not None:
                continue
            pending = self.journal.pending_rows(record.id)
            if not pending:
                continue
            if record.id not in reports:
                reports[record.id] = self._validate(record)
            report = reports[record.id]
            reason = self._push(tenant, record, report, pending)
            if reason is not None:
                return reason
        return None

    def _push(
        self,
        tenant: TenantConfig,
        record: FileRecord,
        report: ValidationReport,
        pending: list[int],
    ) -> str | None:
        frame = report.api_rows().filter(pl.col("row").is_in(pending))
        imported: list[int] = []
        refused: list[tuple[int, str, str]] = []
        flushed = [False]

        def flush() -> None:
            if imported or refused:
                self.journal.record_outcomes(record.id, imported, refused)
                imported.clear()
                refused.clear()
                if not flushed[0]:
                    flushed[0] = True
                    faults.checkpoint("imported-some")

        def on_outcome(outcome: Outcome) -> None:
            if outcome.imported:
                imported.append(outcome.row)
            else:
                refused.append((outcome.row, outcome.code or "", outcome.message or ""))
            if len(imported) + len(refused) >= _FLUSH_EVERY:
                flush()

        rows = (
            {k: v for k, v in row.items() if v is not None}
            for chunk in frame.iter_slices(10_000)
            for row in chunk.iter_rows(named=True)
        )
        sink = self._sink(tenant, record)
        started = time.monotonic()
        # The sink's events (import.rejected, retries) name the file they concern.
        logs.bind(file=record.name)
        try:
            asyncio.run(sink.push(rows, on_outcome))
        except SinkUnavailableError as exc:
            return f"{sink.kind} {exc.reason}: {exc.detail}"
        finally:
            logs.unbind("file")
            flush()
        self.log.info(
            "file.imported",
            file=record.name,
            sink=sink.kind,
            rows=len(pending),
            duration=round(time.monotonic() - started, 3),
        )
        return None

    def _sink(self, tenant: TenantConfig, record: FileRecord) -> Sink:
        if tenant.api is not None:
            return ApiSink(tenant.api, log=self.log, transport=self.transport, stop=self.stop)
        assert record.schema_digest is not None  # noqa: S101 - claimed files have one
        schema = self.schema(record.schema_digest)
        key = schema.primary_key or (schema.fields[0].name,)
        return UserStore(
            self.config.service.state_dir / "users.sqlite", tenant.name, key=key, source=record.id
        )

    # Step 4: report.

    def _report(
        self, tenant: TenantConfig, batch_id: str, reports: dict[str, ValidationReport]
    ) -> None:
        """Write the failure report to the outbox, once, if anything failed.

        ``reports`` holds the files this run validated; others are read again.
        """
        records = self._name_archives(batch_id)
        summaries: list[FileSummary] = []
        attachments: dict[str, bytes] = {}
        for record in records:
            counts = self.journal.counts(record.id)
            reasons = tuple(
                Reason(count=n, field=field, code=code, example=example)
                for n, field, code, example in self.journal.failure_kinds(record.id)
            )
            failures_name = None
            if record.code is None and counts.failed:
                report = reports.get(record.id)
                try:
                    data = self._failure_csv(record, report.table if report else None)
                except Exception as exc:  # noqa: BLE001 - the report goes out without this list
                    self.log.error(
                        "file.step_failed",
                        file=record.name,
                        step="report",
                        attempt=1,
                        error=type(exc).__name__,
                    )
                else:
                    failures_name = attachment_name(record.name)
                    self.spool(record.tenant, record.id, ".failures.csv").write_bytes(data)
                    attachments[failures_name] = data
            summaries.append(
                FileSummary(
                    name=record.name,
                    received_at=record.received_at,
                    counts=counts,
                    file_error=record.message if record.code is not None else None,
                    reasons=reasons,
                    archive_name=record.archive_name,
                    failures_name=failures_name,
                    listed=LISTED_ROWS if counts.failed > LISTED_ROWS else None,
                )
            )
        if not needs_report(summaries):
            self._advance(batch_id, "archiving")
            return
        message = report_message(
            tenant=tenant.name,
            batch_id=batch_id,
            sender=tenant.reply_to,
            recipient=tenant.failed_import_email,
            files=summaries,
            attachments=attachments,
            now=self.clock(),
            service_address=self.config.email.sender if self.config.email else None,
        )
        path = write_outbox(self.config.outbox, batch_id, message)
        faults.checkpoint("report-written")
        with self.journal.transaction():
            self.journal.queue_message(
                message_id=batch_id,
                batch_id=batch_id,
                tenant=tenant.name,
                path=str(path),
                now=self.clock(),
            )
            self.journal.set_batch_state(batch_id, "archiving", self.clock())
        self.log.info(
            "mail.queued",
            message_id=batch_id,
            attachments=len(message.get_payload()) - 1 if message.is_multipart() else 0,
        )

    def _name_archives(self, batch_id: str) -> list[FileRecord]:
        """Give every file of the batch its archive name, once."""
        for record in self.journal.files(batch_id):
            if record.archive_name is None:
                name = archive_name(
                    record.name, record.id, record.received_at, refused=record.state == "refused"
                )
                self.journal.set_file_state(
                    record.id, record.state, self.clock(), archive_name=name
                )
        return self.journal.files(batch_id)

    def _failure_csv(self, record: FileRecord, table: Table | None) -> bytes:
        if table is None:
            read = read_table(self.spool(record.tenant, record.id))
            assert isinstance(read, Table)  # noqa: S101 - it validated with row failures
            table = read
        by_row: dict[int, list[tuple[str | None, str, str]]] = {}
        for row, field, code, message in self.journal.failures(record.id, LISTED_ROWS):
            by_row.setdefault(row, []).append((field, code, message))
        numbers = sorted(by_row)
        values = table.frame.gather([n - FIRST_DATA_ROW for n in numbers]).rows()
        return failure_csv(table.headers, zip(numbers, values, strict=True), by_row)

    # Step 5: archive.

    def _archive(self, tenant: TenantConfig, batch_id: str) -> None:
        records = self._name_archives(batch_id)
        with DropFolder(tenant.drop_dir) as folder:
            for record in records:
                if record.state == "archived":
                    continue
                self._archive_guarded(folder, record)
                faults.checkpoint("archived-one")

    def _archive_guarded(self, folder: DropFolder, record: FileRecord) -> None:
        """Archive one file; after ``MAX_ATTEMPTS`` failures, under its id alone.

        The customer's name is the only part of an archive name that can make
        it fail; the file id makes a name any folder takes.
        """
        try:
            self._archive_one(folder, record)
        except OSError as exc:
            attempt = self.journal.count_attempt(record.id)
            self.log.error(
                "file.step_failed",
                file=record.name,
                step="archive",
                attempt=attempt,
                error=exc.strerror or type(exc).__name__,
            )
            if attempt < MAX_ATTEMPTS:
                raise
            plain = record.id + (".refused" if record.state == "refused" else "")
            self.journal.set_file_state(record.id, record.state, self.clock(), archive_name=plain)
            self._archive_one(folder, self.journal.file(record.id))

    def _archive_one(self, folder: DropFolder, record: FileRecord) -> None:
        assert record.archive_name is not None  # noqa: S101 - named before archiving
        spool = self.spool(record.tenant, record.id)
        if record.state == "refused":
            folder.quarantine(record.name, record.archive_name)
        else:
            identity = Identity(
                dev=record.dev or 0,
                ino=record.ino or 0,
                size=record.size or 0,
                mtime_ns=record.mtime_ns or 0,
            )
            folder.archive(record.name, identity, record.archive_name, spool)
        counts = self.journal.counts(record.id)
        folder.write_bak(
            f"{record.archive_name}.result.json", _result_json(record, counts, self.journal)
        )
        failures = self.spool(record.tenant, record.id, ".failures.csv")
        if failures.exists():
            folder.write_bak(f"{record.archive_name}.failures.csv", failures.read_bytes())
        self.journal.set_file_state(record.id, "archived", self.clock())
        spool.unlink(missing_ok=True)
        failures.unlink(missing_ok=True)
        self.log.info(
            "file.completed",
            file=record.name,
            archived_as=record.archive_name,
            rows=counts.total,
            imported=counts.imported,
            failed=counts.failed,
            pending=counts.pending,
            blank=record.rows_blank,
            code=record.code,
            duration=round(self.clock() - record.received_at, 3),
        )


def _all_rows(report: ValidationReport) -> pl.Series:
    """Every non-blank row of a readable file (all fail with its file error)."""
    if report.table is None:
        return pl.Series(dtype=pl.Int64)
    blank = report.table.blank
    return blank.not_().arg_true() + FIRST_DATA_ROW


def _numbers(series: pl.Series) -> Iterator[int]:
    """The values of ``series``, a slice at a time."""
    for start in range(0, series.len(), _SLICE):
        yield from series.slice(start, _SLICE).to_list()


def _result_json(record: FileRecord, counts: Counts, journal: Journal) -> bytes:
    """The machine-readable outcome of a file: counts and codes, no values."""
    failed: dict[int, dict[str, list[str | None]]] = {}
    for row, field, code, _ in journal.failures(record.id, LISTED_ROWS):
        entry = failed.setdefault(row, {"codes": [], "fields": []})
        entry["codes"].append(code)
        entry["fields"].append(field)
    if record.code is not None or (counts.failed and not counts.imported):
        status = "not_imported"
    elif counts.pending:
        status = "pending"
    elif counts.failed:
        status = "partly_imported"
    else:
        status = "imported"
    document = {
        "file": shown(record.name),
        "archived_as": None if record.archive_name is None else shown(record.archive_name),
        "batch": record.batch_id,
        "received_at": _iso(record.received_at),
        "status": status,
        "encoding": record.encoding,
        "sha256": record.sha256,
        "rows": {
            "total": counts.total,
            "imported": counts.imported,
            "failed": counts.failed,
            "pending": counts.pending,
            "blank": record.rows_blank,
        },
        "file_error": None
        if record.code is None
        else {"code": record.code, "message": record.message},
        "failed_rows": [{"row": row, **entry} for row, entry in sorted(failed.items())],
        # Like the failure list, at most LISTED_ROWS rows; true when that is all of them.
        "failed_rows_complete": len(failed) == counts.failed or record.code is not None,
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
