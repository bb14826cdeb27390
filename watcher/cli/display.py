"""Human-readable renderings of reports: values in, text out."""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING

from watcher.core import wording
from watcher.core.names import shown as printable

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from watcher.core.documents import Owner, PastCheck, Status, TenantDetail, TenantStatus
    from watcher.core.validation import ValidationReport
    from watcher.shell.pipeline.batches import BatchResult

__all__ = ["process_summary", "recent_summary", "status_summary", "validation_summary"]

_SHOWN_FAILURES = 20


def validation_summary(name: str, report: ValidationReport) -> str:
    """A short account of ``report`` for a terminal."""
    encoding = f" ({report.encoding})" if report.encoding else ""
    lines: list[str] = []
    if report.file_errors:
        counted = f"its {report.rows_total:,} rows" if report.table is not None else "its rows"
        lines.append(f"{name}: cannot be imported, {counted} were not checked{encoding}")
        lines.extend(f"  {p.code}: {p.message}" for p in report.file_errors)
        return "\n".join(lines)
    lines.append(
        f"{name}: {report.rows_total:,} rows, {report.rows_valid:,} valid, "
        f"{report.rows_failed:,} failed{encoding}"
    )
    lines.extend(f"  note: {note}" for note in report.notes)
    # From the frame, never a Python object per failure: a million would cost gigabytes.
    failures = report.failures
    if failures.height:
        shown = failures.head(_SHOWN_FAILURES).select("row", "code", "message").rows()
        width = max(len(str(row)) for row, _, _ in shown)
        lines.append("")
        lines.extend(f"  row {row:>{width}}  {code:<16} {message}" for row, code, message in shown)
        if failures.height > _SHOWN_FAILURES:
            lines.append(
                f"  ... and {failures.height - _SHOWN_FAILURES:,} more; --json lists them all"
            )
        lines.append("")
        lines.append("Most common reasons:")
        counts = (
            failures.group_by("code", maintain_order=True)
            .len()
            .sort("len", descending=True, maintain_order=True)
            .head(5)
            .rows()
        )
        lines.extend(f"  {count:>8,}  {code}" for code, count in counts)
    return "\n".join(lines)


def _owner(owner: Owner | None, here: str) -> str:
    """Who runs a tenant, in words."""
    if owner is None:
        return "none (the next instance to look takes it)"
    where = f"{owner['instance']}" + (f" on {owner['host']}" if owner["host"] else "")
    if owner["instance"] == here:
        where += " (this instance)"
    if not owner["live"]:
        return f"{where}, lease ran out {-owner['expires_in']:g} s ago: another instance takes it"
    return f"{where}, lease renewed (runs out in {owner['expires_in']:g} s)"


def _schema_lines(t: TenantStatus, *, running: bool) -> list[str]:
    """The schema in force, and one on disk that was refused."""
    schema = t["schema"]
    lines = [
        f"  schema in force: {schema['version']} ({schema['path']})"
        if schema
        else "  schema in force: none (no valid schema has been loaded)"
        if running
        else "  schema in force: unknown while the service is not running"
    ]
    if refused := t["schema_on_disk"]:
        lines.append(f"  schema on disk: rejected ({'; '.join(refused)})")
    return lines


def _outbox(t: TenantStatus) -> str:
    """A tenant's mail not sent: how much, since when and why."""
    box = t["outbox"]
    line = f"  outbox: {box['waiting']} waiting"
    if box["waiting"] and box["since"] is not None:
        since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(box["since"]))
        line += f" since {since}" + (" (LATE)" if box["late"] else "")
        if box["error"]:
            line += f", last try: {box['error']}"
    return line + f"; {box['rejected']} rejected"


def _service_lines(status: Status) -> list[str]:
    """The service itself: running or not, its instance, a configuration it refused."""
    if status["running"]:
        lines = [f"service: running (pid {status['pid']}, status {status['status_age']} s old)"]
    else:
        lines = ["service: not running"]
    if status["instance"] is not None:
        lines.append(f"instance: {status['instance']} (tenants are shared with other instances)")
    if refused := status.get("config_refused"):
        lines.append(f"configuration: a change was REFUSED, the running one stays: {refused}")
    return lines


def status_summary(status: Status, *, config: Path | None = None) -> str:
    """``watcher status`` for a terminal; ``config`` goes into the commands it suggests."""
    lines = _service_lines(status)
    for name, t in status["tenants"].items():
        lines += ["", f"{name}  ({t['drop_dir']}{'' if t['folder_ok'] else ', MISSING'})"]
        if status["instance"] is not None:
            lines.append(f"  owner: {_owner(t['owner'], status['instance'])}")
        lines += _schema_lines(t, running=status["running"])
        files = t["files"]
        lines.append(f"  files waiting: {len(files)}")
        lines.extend(f"    {f['name']:<32} {f['state']}" for f in files)
        if t["batch_running"]:
            lines.append("  a batch is running" + _importing(t))
        elif t["batch_in"] is not None:
            lines.append(f"  next batch in {t['batch_in']} s")
        last = t["last_batch"]
        if last:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(last["finished_at"]))
            lines.append(
                f"  last batch: {when}, {wording.counted(last['files'], 'file')}, "
                f"{wording.counted(last['rows'], 'row')}: "
                f"{last['imported']:,} imported, "
                + (f"{last['unchanged']:,} unchanged, " if last["unchanged"] else "")
                + f"{last['failed']:,} failed"
                + _missing(last["missing"], last["deactivated"])
            )
        else:
            lines.append("  last batch: none yet")
        lines.append(
            f"  pending rows: {t['pending_rows']:,} in "
            f"{wording.counted(t['unfinished_batches'], 'unfinished batch')}"
        )
        for held in t["held"]:
            since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(held["since"]))
            columns = ", ".join(held["columns"]) or "no column in particular"
            deactivate = f" and deactivate {held['deactivate']:,}" if held["deactivate"] else ""
            lines.append(
                f"  HELD since {since}: batch {held['id'][:8]}, "
                f"{wording.counted(held['rows'], 'row')}, would change {held['changed']:,}"
                f"{deactivate} of {wording.counted(held['known'], 'known user')} ({columns})"
                + (
                    f"; a full snapshot with {held['missing']:,} known users missing"
                    if held["reason"] == "small_snapshot"
                    else ""
                )
            )
            where = f" --config {shlex.quote(str(config))}" if config is not None else ""
            lines += [
                f"    watcher hold {verb}{where} --tenant {name} {held['id'][:8]}"
                for verb in ("approve", "discard")
            ]
        why = t["pending_reason"]
        if why:
            since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(why["since"]))
            lines.append(f"    waiting since {since}: {why['reason']}")
        lines.append(_outbox(t))
        lines.append(_checks(t))
    return "\n".join(lines)


def _importing(t: TenantStatus) -> str:
    """What a running import sends, when it is sending to its API."""
    now = t.get("importing")
    if not now:
        return ""
    return (
        f": {now['rate']:,.0f} answers a second from the API, {now['in_flight']} in flight "
        f"(the API's limit as learnt: {now['limit']:g})"
    )


def _checks(t: TenantStatus) -> str:
    """A tenant's check lane over the last week."""
    lane = t["checks"]
    if not lane["files"] or lane["last"] is None:
        return "  check lane: no file checked in the last 7 days"
    last = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(lane["last"]))
    return (
        f"  check lane: {wording.counted(lane['files'], 'file')} checked in the last 7 days, "
        f"{lane['clean']:,} would import whole; last at {last}"
    )


def recent_summary(detail: TenantDetail) -> str:
    """A tenant's last batches and checks for a terminal, newest first."""
    lines = ["", "  recent batches:" if detail["recent"] else "  recent batches: none yet"]
    for b in detail["recent"]:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(b["received_at"]))
        codes = ", ".join(f"{code} x{count:,}" for code, count in b["codes"])
        lines.append(
            f"    {when}  {b['state']:<9} {wording.counted(len(b['files']), 'file')}, "
            f"{wording.counted(b['rows'], 'row')}: {b['imported']:,} imported, "
            f"{b['unchanged']:,} unchanged, {b['failed']:,} failed"
            + _missing(b["missing"], b["deactivated"])
            + (f" ({codes})" if codes else "")
        )
    if detail["checks"]:
        lines.append("  recent checks:")
    for c in detail["checks"]:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(c["checked_at"]))
        lines.append(f"    {when}  {printable(c['name'])}: {_answered(c)}")
    return "\n".join(lines)


def _missing(missing: int, deactivated: int) -> str:
    """A full snapshot's missing users, for a line of counts; nothing when there are none."""
    if not missing:
        return ""
    return f"; {missing:,} missing" + (f", {deactivated:,} deactivated" if deactivated else "")


def _answered(check: PastCheck) -> str:
    """What a check answered, in a few words."""
    if check["code"] is not None:
        return f"file failed ({check['code']})"
    if check["failed"]:
        return f"{check['failed']:,} of {wording.counted(check['rows'], 'row')} would fail"
    return f"all {wording.counted(check['rows'], 'row')} would import"


def process_summary(results: Sequence[BatchResult], *, waiting: int) -> str:
    """``watcher process`` for a terminal: a line per batch, then the outbox."""
    if not results:
        return "Nothing to do: no files named and no unfinished batch."
    lines: list[str] = []
    for r in results:
        c = r.counts
        line = (
            f"Batch {r.batch_id[:8]}: {wording.counted(r.files, 'file')}, "
            f"{wording.counted(c.total, 'row')}: {c.imported:,} imported, "
            + (f"{c.unchanged:,} unchanged, " if c.unchanged else "")
            + f"{c.failed:,} failed"
            + _missing(c.missing, c.deactivated)
        )
        if r.complete:
            lines.append(line + ".")
        else:
            lines.append(f"{line}, {c.pending:,} pending: stopped ({r.reason}).")
    if waiting:
        lines.append(f"{wording.counted(waiting, 'report')} waiting in the outbox.")
    return "\n".join(lines)
