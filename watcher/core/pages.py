"""The status page as HTML: every tenant at a glance, and one page per tenant.

Pure: status documents (:mod:`watcher.core.documents`) and the time in, a
whole HTML page out; the chart of rows per day is SVG drawn here, with no
script and nothing loaded from elsewhere. Every text is escaped; no value
from a customer's rows reaches a page, only counts, codes, file names and
times.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from watcher.core.names import shown
from watcher.core.wording import counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watcher.core.documents import DayRows, Status, TenantDetail, TenantStatus

__all__ = ["chart", "overview_page", "tenant_page"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}td.n,th.n{text-align:right}
.ok{color:#176f2c}.held{color:#8a5a00;font-weight:bold}.failing{color:#b3261e;font-weight:bold}
.muted{color:#777}svg text{font:11px system-ui,sans-serif;fill:#444}
"""
_COLOURS = {"imported": "#2e7d32", "unchanged": "#9e9e9e", "failed": "#c62828"}
_KINDS: tuple[Literal["imported", "unchanged", "failed"], ...] = ("imported", "unchanged", "failed")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(stamp: float | None) -> str:
    return "—" if stamp is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<meta name=viewport content='width=device-width'><title>{_e(title)}</title>"
        f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n"
    )


def _state(tenant: TenantStatus) -> tuple[str, str]:
    """A tenant's state in a word, and its class: held, failing or ok."""
    if tenant["held"]:
        return "held for review", "held"
    if tenant["pending_reason"] or not tenant["folder_ok"] or tenant["schema_on_disk"]:
        return "needs attention", "failing"
    if tenant["outbox"]["rejected"]:
        return "mail refused", "failing"
    if tenant["outbox"]["late"]:
        return "mail waiting", "held"
    return "ok", "ok"


def _service(status: Status) -> str:
    shared = ""
    if status["instance"] is not None:
        shared = f" This is instance {_e(status['instance'])}; instances share the tenants."
    if refused := status.get("config_refused"):
        shared += f"</p><p class=failing>A changed configuration was refused: {_e(refused)}"
    if status["running"]:
        return f"<p class=ok>The service is running (pid {_e(status['pid'])}).{shared}</p>"
    return f"<p class=failing>The service is not running.{shared}</p>"


def _owner(tenant: TenantStatus) -> str:
    """The instance that runs a tenant, in a cell (several instances share the tenants)."""
    owner = tenant["owner"]
    if owner is None:
        return "<td class=muted>nobody yet</td>"
    if not owner["live"]:
        return f"<td class=failing>{_e(owner['instance'])} (lease ran out)</td>"
    return f"<td>{_e(owner['instance'])}</td>"


def overview_page(status: Status) -> str:
    """Every tenant at a glance: its last batch, what waits, and whether anything is wrong."""
    shared = status["instance"] is not None
    rows = []
    for name, t in sorted(status["tenants"].items()):
        last = t["last_batch"]
        word, css = _state(t)
        counts = (
            "<td colspan=4 class=muted>none yet</td>"
            if last is None
            else "".join(
                f"<td class=n>{last[k]:,}</td>" for k in ("rows", "imported", "unchanged", "failed")
            )
        )
        rows.append(
            f"<tr><td><a href='/tenants/{quote(name)}'>{_e(name)}</a></td>"
            f"<td>{_e(_when(last['finished_at'] if last else None))}</td>{counts}"
            f"<td class=n>{len(t['files'])}</td><td class=n>{t['pending_rows']:,}</td>"
            f"<td class=n>{len(t['held'])}</td><td class=n>{t['outbox']['waiting']}</td>"
            f"<td class=n>{t['checks']['files']:,}</td><td class={css}>{_e(word)}</td>"
            f"{_owner(t) if shared else ''}</tr>"
        )
    table = (
        "<table><tr><th>Tenant</th><th>Last batch</th><th class=n>Rows</th>"
        "<th class=n>Imported</th><th class=n>Unchanged</th><th class=n>Failed</th>"
        "<th class=n>Files waiting</th><th class=n>Rows pending</th><th class=n>Held</th>"
        "<th class=n>Mail waiting</th><th class=n title='files checked in the last 7 days'>"
        f"Checked (7 days)</th><th>State</th>{'<th>Owner</th>' if shared else ''}</tr>\n"
        + "\n".join(rows)
        + "</table>"
    )
    body = (
        f"<h1>User import watcher</h1>{_service(status)}"
        f"<p>{counted(len(status['tenants']), 'tenant')}.</p>{table}"
    )
    return _page("User import watcher", body)


def tenant_page(detail: TenantDetail, *, running: bool) -> str:
    """One tenant: what waits and why, its schema, its last batches and rows per day."""
    name, t = detail["name"], detail["status"]
    word, css = _state(t)
    state = f"<p class={css}>{_e(word)}</p>"
    if now := t.get("importing"):
        state += (
            f"<p>Importing now: {now['rate']:,.0f} answers a second from the API, "
            f"{now['in_flight']} in flight, limit {now['limit']:g} as learnt from its answers.</p>"
        )
    folder = "" if t["folder_ok"] else " <b class=failing>missing</b>"
    parts = [
        "<p><a href='/'>All tenants</a></p>",
        f"<h1>{_e(name)}</h1>",
        state if running else "<p class=failing>The service is not running.</p>",
        f"<p>Drop folder {_e(t['drop_dir'])}{folder}</p>",
    ]
    schema = t["schema"]
    parts.append(
        f"<p>Schema in force: {_e(schema['version'])}</p>"
        if schema
        else "<p class=muted>Schema in force: not known while the service is not running</p>"
    )
    if t["schema_on_disk"]:
        parts.append(
            f"<p class=failing>Schema on disk refused: {_e('; '.join(t['schema_on_disk']))}</p>"
        )
    if t["pending_reason"]:
        why = t["pending_reason"]
        parts.append(
            f"<p class=failing>{t['pending_rows']:,} rows pending since "
            f"{_e(_when(why['since']))}: {_e(why['reason'])}</p>"
        )
    box = t["outbox"]
    if box["waiting"] and box["since"] is not None:
        said = f": {_e(box['error'])}" if box["error"] else ""
        parts.append(
            f"<p class={'held' if box['late'] else 'muted'}>{counted(box['waiting'], 'message')} "
            f"waiting to be sent since {_e(_when(box['since']))}{said}</p>"
        )
    parts.extend(
        f"<p class=held>Held since {_e(_when(held['since']))}: batch {_e(held['id'][:8])}, "
        f"{held['rows']:,} rows, would change {held['changed']:,} of {held['known']:,} known "
        f"users ({_e(', '.join(held['columns']) or 'no column in particular')})</p>"
        for held in t["held"]
    )
    parts.append("<h2>Files waiting</h2>")
    parts.append(
        "<table><tr><th>File</th><th>Waiting for</th></tr>"
        + "".join(f"<tr><td>{_e(f['name'])}</td><td>{_e(f['state'])}</td></tr>" for f in t["files"])
        + "</table>"
        if t["files"]
        else "<p class=muted>None.</p>"
    )
    parts += ["<h2>Rows per day, last 30 days</h2>", chart(detail["daily"])]
    parts += ["<h2>Recent batches</h2>", _recent(detail)]
    parts += ["<h2>Check lane</h2>", _checks(detail)]
    return _page(f"{name}: user import watcher", "\n".join(parts))


def _recent(detail: TenantDetail) -> str:
    if not detail["recent"]:
        return "<p class=muted>No batch yet.</p>"
    rows = []
    for b in detail["recent"]:
        files = "<br>".join(_e(shown(f)) for f in b["files"]) or "<span class=muted>—</span>"
        codes = ", ".join(f"{_e(code)} &times;{count:,}" for code, count in b["codes"])
        numbers = "".join(
            f"<td class=n>{b[k]:,}</td>"
            for k in ("rows", "imported", "unchanged", "failed", "pending")
        )
        finished = _when(b["finished_at"]) if b["finished_at"] else "—"
        # A full snapshot's missing users: how many, and how many of them were deactivated.
        missing = f"{b['missing']:,}" + (
            f" ({b['deactivated']:,} deactivated)" if b["deactivated"] else ""
        )
        rows.append(
            f"<tr><td>{_e(_when(b['received_at']))}</td><td>{_e(finished)}</td>"
            f"<td>{_e(b['state'])}</td>"
            f"<td>{files}</td>{numbers}<td class=n>{missing}</td><td>{codes}</td></tr>"
        )
    return (
        "<table><tr><th>Arrived</th><th>Finished</th><th>State</th><th>Files</th>"
        "<th class=n>Rows</th>"
        "<th class=n>Imported</th><th class=n>Unchanged</th><th class=n>Failed</th>"
        "<th class=n>Pending</th><th class=n>Missing</th><th>Commonest failures</th></tr>\n"
        + "\n".join(rows)
        + "</table>"
    )


def _checks(detail: TenantDetail) -> str:
    """What the check lane answered lately: when, which file, what it would do."""
    lane = detail["status"]["checks"]
    summary = (
        f"<p>{counted(lane['files'], 'file')} checked in the last 7 days, "
        f"{lane['clean']:,} of them would import whole.</p>"
    )
    if not detail["checks"]:
        return summary + "<p class=muted>No file checked yet.</p>"
    rows = []
    for c in detail["checks"]:
        if c["code"] is not None:
            answer, css = f"file failed: {_e(c['code'])}", "failing"
        elif c["failed"]:
            answer, css = f"{c['failed']:,} rows would fail", "held"
        else:
            answer, css = "would import whole", "ok"
        rows.append(
            f"<tr><td>{_e(_when(c['checked_at']))}</td><td>{_e(shown(c['name']))}</td>"
            f"<td class=n>{c['rows']:,}</td><td class={css}>{answer}</td></tr>"
        )
    return (
        summary + "<table><tr><th>Checked</th><th>File</th><th class=n>Rows</th><th>Answer</th>"
        "</tr>\n" + "\n".join(rows) + "</table>"
    )


def chart(days: Sequence[DayRows], *, width: int = 600, height: int = 160) -> str:
    """Rows imported, unchanged and failed per day, in SVG: a strip of bars per kind.

    Each strip has its own scale, shown on its axis (0 and the kind's highest
    day), so 12 failed rows stay visible beside a day of 62,315 imported.
    """
    axis = 84  # room for the labels left of the bars
    step = (width - axis) / max(len(days), 1)
    strip = height / len(_COLOURS)
    parts = []
    kinds: tuple[Literal["imported", "unchanged", "failed"], ...] = (
        "imported",
        "unchanged",
        "failed",
    )
    for row, kind in enumerate(kinds):
        colour = _COLOURS[kind]
        top = max((d[kind] for d in days), default=0)
        base = (row + 1) * strip
        parts.append(
            f"<line x1='{axis}' y1='{base:.1f}' x2='{width}' y2='{base:.1f}' stroke='#999'/>"
            f"<line x1='{axis}' y1='{base - strip + 4:.1f}' x2='{axis}' y2='{base:.1f}' "
            f"stroke='#999'/>"
            f"<text x='{axis - 4}' y='{base - strip + 14:.1f}' text-anchor='end'>{top:,}</text>"
            f"<text x='{axis - 4}' y='{base - 2:.1f}' text-anchor='end' fill='{colour}'>"
            f"{kind}</text>"
        )
        for i, day in enumerate(days):
            value = day[kind]
            if not value:
                continue
            tall = max(value / top * (strip - 6), 1.0)
            parts.append(
                f"<rect x='{axis + i * step + 1:.1f}' y='{base - tall:.1f}' "
                f"width='{max(step - 2, 1):.1f}' height='{tall:.1f}' fill='{colour}'>"
                f"<title>{_e(day['day'])}: {value:,} {kind}</title></rect>"
            )
    first, last = (days[0]["day"], days[-1]["day"]) if days else ("", "")
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 20}' "
        f"role='img' aria-label='rows per day: imported, unchanged and failed'>"
        f"{''.join(parts)}"
        f"<text x='{axis}' y='{height + 14}'>{_e(first)}</text>"
        f"<text x='{width}' y='{height + 14}' text-anchor='end'>{_e(last)}</text></svg>"
    )
