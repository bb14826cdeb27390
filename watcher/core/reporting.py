"""The failure report a customer receives: a CSV of failed users and an email.

Pure: values in, bytes and messages out. The CSV holds the customer's own
header and values for each failed row, then four columns of ours (row number,
codes, fields, reasons); a customer fixes the values and uploads the file as
it is, and the reader skips our columns. A cell a spreadsheet would run as a
formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
gets a leading apostrophe; when our report comes back, the validator removes
exactly that apostrophe again (see :func:`restore`; the validator does the
same on whole columns).

Reports are bounded in bytes as well as rows: a cell longer than
``CELL_LIMIT`` characters is cut, with a marker saying how long it was; a
failure list stops before ``FAILURES_BYTES``; attachments go only while a
message stays under ``MESSAGE_LIMIT`` (10 MB, what ordinary mail servers
take), the text saying where a list too large to attach is kept.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr
from typing import TYPE_CHECKING

from watcher.core.codes import Code
from watcher.core.names import shown
from watcher.core.schema import FORMULA_START, RESERVED_COLUMNS
from watcher.core.wording import counted

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from watcher.core.records import Counts, MissingCounts, Reason

__all__ = [
    "ATTACHMENT_LIMIT",
    "CELL_LIMIT",
    "ENCRYPTED",
    "FAILURES_BYTES",
    "LISTED_ROWS",
    "MESSAGE_LIMIT",
    "MISSING_STATES",
    "Failure",
    "FailureList",
    "FileSummary",
    "SnapshotReport",
    "body",
    "common_reasons",
    "cut",
    "envelope",
    "failure_csv",
    "needs_report",
    "neutralise",
    "reason_lines",
    "report_message",
    "restore",
    "snapshot_lines",
    "subject",
    "without_attachments",
]

# The suffix of a list of rows not imported encrypted to the customer's key.
ENCRYPTED = ".gpg"

# A message's whole size, and its attachments' (base64 makes 4 bytes of 3).
MESSAGE_LIMIT = 10_000_000
ATTACHMENT_LIMIT = 6 * 1024 * 1024
# The longest cell a failure list repeats; no attribute of a user comes near it.
CELL_LIMIT = 1000
# The largest failure list written (beside the file, and the most attached).
FAILURES_BYTES = 50 * 1024 * 1024
# Failed rows a report lists in full; the rest are counted. A file of millions
# of broken lines must not make a report (and its memory) millions of lines.
LISTED_ROWS = 10_000
_REASONS_SHOWN = 5
# Codes whose message differs from row to row (it names other rows or a count).
_SAID_PER_ROW = frozenset(
    {Code.DUPLICATE_KEY, Code.DUPLICATE_VALUE, Code.TOO_FEW_FIELDS, Code.TOO_MANY_FIELDS}
)

Failure = tuple[str | None, str, str]  # field, code, message


# What became of a missing user, as its list says it.
MISSING_STATES = {
    "reported": "missing (not changed)",
    "pending": "missing (deactivation waiting)",
    "deactivated": "deactivated",
    "failed": "missing (not deactivated)",
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SnapshotReport:
    """A batch's missing users, for the report: counts, what was done, the list's name."""

    counts: MissingCounts
    deactivate: bool
    listed: int
    list_name: str | None = None  # attached under this name; None when not attached


def snapshot_lines(report: SnapshotReport) -> list[str]:
    """The report's paragraph on the users the snapshot lacked."""
    c = report.counts
    lines = [
        "Users missing from this snapshot",
        (
            f"  {counted(c.total, 'user')} imported before {'is' if c.total == 1 else 'are'} "
            "not in the file(s) of this import."
        ),
    ]
    if not report.deactivate:
        lines.append("  They were not changed: they stay active until you or we remove them.")
    else:
        done = [f"{c.deactivated:,} deactivated"]
        if c.refused:
            done.append(f"{c.refused:,} not deactivated (the reason is in the list)")
        if c.pending:
            done.append(f"{c.pending:,} still waiting")
        lines.append(f"  {', '.join(done)}.")
        lines.append("  A user who is back in a later file is imported again as new.")
    if report.list_name is not None:
        lines.append(f"  Their IDs are listed in the attached {report.list_name}.")
        if report.listed < c.total:
            lines.append(f"  The list holds the first {report.listed:,}.")
    return [*lines, ""]


def neutralise(cell: str) -> str:
    """``cell`` made inert for a spreadsheet."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def restore(cell: str) -> str:
    """Undo :func:`neutralise` for a cell of a report sent back to us."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_START):
        return cell[1:]
    return cell


def cut(cell: str) -> str:
    """``cell``, or its first ``CELL_LIMIT`` characters and a marker saying it was cut."""
    if len(cell) <= CELL_LIMIT:
        return cell
    return f"{cell[:CELL_LIMIT]} [cut: {len(cell):,} characters]"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FailureList:
    """A failure list's bytes, and how many failed rows it holds."""

    data: bytes
    rows: int


def failure_csv(
    headers: Sequence[str],
    rows: Iterable[tuple[int, Sequence[str | None]]],
    reasons: Mapping[int, list[Failure]],
    *,
    max_bytes: int = FAILURES_BYTES,
) -> FailureList:
    """The failed rows as CSV: the customer's columns, then ours.

    Args:
        headers: the file's header cells as written.
        rows: each failed row's spreadsheet number and values, in file order.
        reasons: each failed row's failures (field, code, message).
        max_bytes: rows stop before the list grows past it (cells are cut first).
    """
    reserved = {name.casefold() for name in RESERVED_COLUMNS}
    keep = [i for i, h in enumerate(headers) if h.strip().casefold() not in reserved]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: list[str]) -> bytes:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    # A BOM makes spreadsheets read UTF-8 as UTF-8; the reader strips it.
    chunks = [
        "\ufeff".encode(),
        line([neutralise(cut(headers[i])) for i in keep] + list(RESERVED_COLUMNS)),
    ]
    size = sum(len(c) for c in chunks)
    listed = 0
    for number, values in rows:
        failures = reasons.get(number, [])
        chunk = line(
            [neutralise(cut(values[i] or "")) if i < len(values) else "" for i in keep]
            + [
                str(number),
                "; ".join(code for _, code, _ in failures),
                "; ".join(field or "" for field, _, _ in failures),
                neutralise("; ".join(message for _, _, message in failures)),
            ]
        )
        if size + len(chunk) > max_bytes:
            break
        chunks.append(chunk)
        size += len(chunk)
        listed += 1
    return FailureList(data=b"".join(chunks), rows=listed)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FileSummary:
    """What happened to one file of a batch, for the report."""

    name: str
    received_at: float
    counts: Counts
    file_error: str | None = None
    reasons: tuple[Reason, ...] = ()
    archive_name: str | None = None
    failures_name: str | None = None
    listed: int | None = None  # failed rows in the attachment, when not all of them
    # An earlier file with the same bytes, and when it was received.
    identical_to: tuple[str, float] | None = None
    # What reading it noted: the workbook's sheet, numbers in text columns.
    notes: tuple[str, ...] = ()
    # Where .bak keeps its list of rows not imported: encrypted (".gpg") for an
    # encrypted upload, or nowhere when there is no key to encrypt it to.
    kept_suffix: str | None = ""


def needs_report(files: Sequence[FileSummary], snapshot: SnapshotReport | None = None) -> bool:
    """Whether a batch has anything to tell the customer about: failures, or missing users."""
    missing = snapshot is not None and snapshot.counts.total > 0
    return missing or any(f.file_error is not None or f.counts.failed for f in files)


def _failed(files: Sequence[FileSummary]) -> bool:
    return any(f.file_error is not None or f.counts.failed for f in files)


def common_reasons(reasons: Sequence[Reason]) -> list[tuple[int, str]]:
    """The most frequent reasons: (how many rows, what is wrong with them).

    Most rules say the same of every row they fail, so the sentence stands
    for all of them; a reason whose sentence names other rows or a count of
    values gives one row's and says how many more are like it.
    """
    return [
        (
            r.count,
            r.example
            if r.count == 1 or r.code not in _SAID_PER_ROW
            else f"{r.example} (and {r.count - 1:,} more like it)",
        )
        for r in reasons[:_REASONS_SHOWN]
    ]


def reason_lines(reasons: Sequence[tuple[int, str]]) -> list[str]:
    """The lines of a list of reasons, each with how many rows it failed."""
    return [f"    {counted(n, 'row')}: {reason}" for n, reason in reasons]


def subject(files: Sequence[FileSummary], snapshot: SnapshotReport | None = None) -> str:
    """The report's subject line."""
    parts: list[str] = []
    unreadable = sum(1 for f in files if f.file_error is not None)
    if unreadable:
        parts.append(f"{counted(unreadable, 'file')} not imported")
    # Every row of the batch, those of files that failed whole included: the
    # same counts as the result files, the log and watcher status.
    failed = sum(f.counts.failed for f in files)
    if failed:
        total = sum(f.counts.total for f in files)
        parts.append(f"{failed:,} of {counted(total, 'user')} not imported")
    if snapshot is not None and snapshot.counts.total:
        c = snapshot.counts
        if not parts:
            total = sum(f.counts.total for f in files)
            parts.append(f"{counted(total, 'user')} up to date")
        if snapshot.deactivate:
            if c.deactivated:
                parts.append(f"{counted(c.deactivated, 'missing user')} deactivated")
            if c.refused or c.pending:
                left = c.refused + c.pending
                parts.append(f"{counted(left, 'missing user')} not deactivated")
        else:
            parts.append(f"{counted(c.total, 'user')} missing")
    return "User import: " + "; ".join(parts)


def body(
    files: Sequence[FileSummary],
    *,
    reply_to: str,
    attached: Sequence[str],
    now: float,
    snapshot: SnapshotReport | None = None,
) -> str:
    """The report's text: per file, counts and reasons; the missing users; then how to fix."""
    when = time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(now))
    opening = (
        [
            f"The user import that finished on {when} could not import everything.",
            "Below, for each file: how many users were imported, and why the others were not.",
        ]
        if _failed(files)
        else [
            f"The user import that finished on {when} imported every row of its files,",
            "but users imported before are missing from it: see below.",
        ]
    )
    lines = ["Hello,", "", *opening, ""]
    for f in files:
        lines.append(shown(f.name))
        if f.file_error is not None:
            lines.append(f"  Not imported: {f.file_error}")
        else:
            c = f.counts
            lines.append(
                f"  {counted(c.total, 'row')}: {c.imported:,} imported"
                + (f", {c.unchanged:,} already up to date" if c.unchanged else "")
                + f", {c.failed:,} not imported"
                + (f", {c.pending:,} still waiting" if c.pending else "")
                + "."
            )
            lines.extend(f"  Note: {note}" for note in f.notes)
            if f.reasons:
                lines.append("  Most common reasons:")
                lines.extend(reason_lines(common_reasons(f.reasons)))
                others = f.reasons[_REASONS_SHOWN:]
                if others:
                    kinds = (
                        "one other reason" if len(others) == 1 else f"{len(others)} other reasons"
                    )
                    lines.append(f"    and {sum(r.count for r in others):,} more for {kinds}")
            lines += _list_lines(f, attached)
        if f.identical_to is not None:
            earlier, received = f.identical_to
            stamp = time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(received))
            lines.append(
                f"  It is identical to {shown(earlier)}, received {stamp}: no user was sent twice."
            )
        if f.archive_name is not None:
            lines.append(f"  The file you uploaded is kept as .bak/{shown(f.archive_name)}.")
        lines.append("")
    if snapshot is not None and snapshot.counts.total:
        lines += snapshot_lines(snapshot)
    lines += _how_to_fix(files, attached)
    lines += [
        "Each processed file has a .result.json beside it in .bak for scripts.",
        "",
        f"This report was sent by the user import service; replies go to {parseaddr(reply_to)[1]}.",
    ]
    return "\n".join(lines) + "\n"


def _list_lines(f: FileSummary, attached: Sequence[str]) -> list[str]:
    """Where a file's list of rows not imported is: attached (and how to open it), or kept."""
    lines: list[str] = []
    c = f.counts
    if f.listed is not None and f.failures_name is not None:
        lines.append(
            f"  The list of rows not imported holds the first {f.listed:,} of "
            f"{c.failed:,}; fix those and upload the file again to see the rest."
        )
    name = f.failures_name
    if name is not None and name in attached:
        lines.append(f"  The rows not imported are attached as {name}.")
        if name.endswith(ENCRYPTED):
            plain = name.removesuffix(ENCRYPTED)
            lines.append(f"  It is encrypted to your key: gpg --decrypt {name} > {plain}")
    elif name is not None and f.kept_suffix is None:
        lines.append(
            "  The list of rows not imported is too large to attach, and the file came "
            "encrypted, so it is not kept in your folder in plain: fix the rows the reasons "
            "above name, or ask us to encrypt reports to your key."
        )
    elif name is not None:
        kept = (
            f".bak/{shown(f.archive_name)}.failures.csv{f.kept_suffix}"
            if f.archive_name is not None
            else "the .bak folder, beside the file"
        )
        lines.append(f"  The list of rows not imported is too large to attach: it is in {kept}.")
    return lines


def _how_to_fix(files: Sequence[FileSummary], attached: Sequence[str]) -> list[str]:
    """What to do next, for what the report holds: a list of rows, a file to send again."""
    lines = []
    listed = [f.failures_name for f in files if f.failures_name is not None]
    if listed:
        where = (
            "the attached file"
            if any(name in attached for name in listed)
            else "the list of rows not imported in .bak"
        )
        lines += [
            f"To fix rows: open {where}, correct the values its import_error column",
            "describes, and upload it again as it is. The columns import_row,",
            "import_error_code, import_error_field and import_error are ignored on upload.",
        ]
    if any(f.file_error is not None for f in files):
        lines += [
            "To fix a file that was not imported: correct what is said of it above and upload",
            "it again.",
        ]
    return lines


def report_message(
    *,
    tenant: str,
    batch_id: str,
    sender: str,
    recipient: str,
    files: Sequence[FileSummary],
    attachments: Mapping[str, bytes],
    now: float,
    service_address: str | None = None,
    snapshot: SnapshotReport | None = None,
) -> EmailMessage:
    """The whole failure report as an email, attachments within the size limit.

    The headers are :func:`envelope`'s.
    """
    attached: dict[str, bytes] = {}
    size = 0
    for name, data in attachments.items():
        if size + len(data) <= ATTACHMENT_LIMIT:
            attached[name] = data
            size += len(data)
    # One id per batch: a report rebuilt after a crash is the same message.
    message = envelope(
        sender=sender,
        recipient=recipient,
        subject=subject(files, snapshot),
        now=now,
        message_id=f"{batch_id}.{tenant}",
        service_address=service_address,
    )
    if snapshot is not None and snapshot.list_name not in attached:
        snapshot = dataclasses.replace(snapshot, list_name=None)
    text = body(files, reply_to=sender, attached=list(attached), now=now, snapshot=snapshot)
    message.set_content(text)
    for name, data in attached.items():
        if name.endswith(ENCRYPTED):
            message.add_attachment(
                data, maintype="application", subtype="octet-stream", filename=name
            )
        else:
            message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return message


def envelope(
    *,
    sender: str,
    recipient: str,
    subject: str,
    now: float,
    message_id: str,
    service_address: str | None = None,
) -> EmailMessage:
    """A message to a tenant, with its headers and no content yet.

    ``sender`` is the tenant's reply-to address. With ``service_address`` the
    message comes from the service's own mailbox under the tenant's display
    name, replies still going to ``sender``: a relay may send for its own
    domain, and the customer's domain's SPF and DMARC would refuse it for
    theirs. No Sender field: RFC 5322 wants one only when the From mailbox is
    not the one that sent it. ``message_id`` is the local part of the
    Message-ID, the same for a message rebuilt after a crash.
    """
    message = EmailMessage()
    if service_address is None:
        message["From"] = sender
    else:
        name = parseaddr(sender)[0] or parseaddr(service_address)[0] or "User import"
        message["From"] = formataddr((name, parseaddr(service_address)[1]))
    message["Reply-To"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(now, usegmt=True)
    domain = parseaddr(message["From"])[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{message_id}@{domain}>"
    return message


_MIME_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})


def without_attachments(message: EmailMessage) -> EmailMessage:
    """``message`` without its attachments, saying at the top that they were left out.

    For a mail server that refuses a message for its size: the customer still
    hears what happened, and where the lists are kept.
    """
    smaller = EmailMessage()
    for key, value in message.items():
        if key.lower() not in _MIME_HEADERS:
            smaller[key] = value
    names = [a.get_filename() or "a list" for a in message.iter_attachments()]
    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if isinstance(part, EmailMessage) else ""
    note = (
        "Your mail server refused this message as too large, so it comes without "
        f"its attachments ({', '.join(names)}). The same lists are kept in your folder: "
        "in .bak/ beside each file (.failures.csv), or in check/ beside a checked file "
        "(.check.csv)."
    )
    smaller.set_content(f"{note}\n\n{text}")
    return smaller
