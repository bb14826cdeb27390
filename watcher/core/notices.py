"""The messages a customer gets besides the failure report: held, summary, check.

- a hold notice, when the safeguard holds an import (counts and column names);
- a summary after every batch that had no failure, with ``notify = "always"``;
- the answer to a file put in the check folder, which is never imported;
- a notice of files put in a folder inside the drop folder, never imported.

Pure: counts, column names and file names in, an email out. Only a check's
answer carries values: the rows that would fail, attached as the failure
report attaches them (:mod:`watcher.core.reporting`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from email.utils import parseaddr
from typing import TYPE_CHECKING

from watcher.core.names import shown
from watcher.core.reporting import envelope, reason_lines
from watcher.core.wording import counted

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence
    from email.message import EmailMessage

    from watcher.core.changes import ChangeSummary
    from watcher.core.reporting import FileSummary

__all__ = [
    "CheckAnswer",
    "changes_line",
    "check_message",
    "check_subject",
    "hold_message",
    "hold_subject",
    "strays_id",
    "strays_message",
    "summary_message",
]


def hold_subject(changes: ChangeSummary) -> str:
    """The subject of a hold notice: how many known users the import would change or miss."""
    if changes.hold == "small_snapshot":
        return (
            f"User import on hold: it names {counted(changes.snapshot or 0, 'user')} "
            f"of {changes.known:,}"
        )
    deactivate = f" and deactivate {changes.deactivate:,}" if changes.deactivate else ""
    return (
        f"User import on hold: it would change {changes.changed:,}{deactivate} of "
        f"{counted(changes.known, 'user')}"
    )


def _why_held(changes: ChangeSummary, allowed: float) -> str:
    """The notice's paragraph on why the import was held."""
    if changes.hold == "small_snapshot":
        what = "would be deactivated" if changes.deactivate else "would be reported as missing"
        return (
            f"Your files name {counted(changes.snapshot or 0, 'user')}, but "
            f"{changes.known:,} were imported before: {changes.missing:,} of them are not in "
            f"the files and {what}. A file this much smaller than your list of users is more "
            "often a cut or filtered export than that many people leaving at once."
        )
    deactivate = (
        f" and deactivate {changes.deactivate:,} no longer in your files"
        if changes.deactivate
        else ""
    )
    return (
        f"It would change {changes.changed:,}{deactivate} of the "
        f"{counted(changes.known, 'user')} imported before ({changes.share:.0%}), more than "
        f"the {allowed:.0%} one import may change without a review. This often means columns "
        "were swapped, an old export was sent, or the file belongs to another organisation."
    )


def hold_message(
    *,
    tenant: str,
    batch_id: str,
    sender: str,
    recipient: str,
    files: Sequence[tuple[str, int]],
    changes: ChangeSummary,
    allowed: float,
    received_at: float,
    now: float,
    service_address: str | None = None,
    contact: str | None = None,
) -> EmailMessage:
    """The notice that an import was held, and why, in counts and column names.

    Args:
        tenant: whose import it is.
        batch_id: the held batch (the notice's id derives from it).
        sender: the tenant's reply-to address.
        recipient: the tenant's failed-import address.
        files: each held file's name and rows.
        changes: what the import would do to the tenant's users.
        allowed: the share of known users an import may change unreviewed.
        received_at: when the files arrived.
        now: the time of the notice.
        service_address: the service's own address, if it sends from it.
        contact: the operator's address, who decides on the hold, if configured.
    """
    when = time.strftime("%Y-%m-%d at %H:%M UTC", time.gmtime(received_at))
    lines = [
        f"The user import received on {when} was put on hold: nothing was imported.",
        "",
        _why_held(changes, allowed),
    ]
    if changes.columns:
        lines += ["", "The columns that would change the most users:"]
        lines += [f"  {name}: {counted(count, 'user')}" for name, count in changes.columns]
    lines += ["", "Files held:"]
    lines += [f"  {shown(name)}: {counted(rows, 'row')}" for name, rows in files]
    lines += [
        "",
        "An administrator of the import service will look at it and either let it through",
        "or discard it; you will get a report either way. Files you upload meanwhile wait",
        "behind this one.",
    ]
    if contact is not None:
        lines += [
            f"If the file is wrong, write to {parseaddr(contact)[1]} to have it discarded, and",
            "upload the corrected file.",
        ]
    else:
        lines += ["If the file is wrong, upload the corrected file."]
    message = envelope(
        sender=sender,
        recipient=recipient,
        subject=hold_subject(changes),
        now=now,
        message_id=f"{batch_id}.held.{tenant}",
        service_address=service_address,
    )
    message.set_content("\n".join(lines) + "\n")
    return message


def strays_id(files: Sequence[str]) -> str:
    """The outbox id of the notice of ``files``: the same files, the same notice."""
    return "strays-" + hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()[:16]


def strays_message(
    *,
    tenant: str,
    sender: str,
    recipient: str,
    files: Sequence[str],
    now: float,
    service_address: str | None = None,
) -> EmailMessage:
    """The notice of files put where nothing is imported: in a folder inside the drop folder.

    ``files`` are their paths inside the drop folder (``folder/name``); the
    notice's id derives from them, so the same files are told of once.
    """
    noun = counted(len(files), "file")
    lines = [
        f"The user import did not import {noun} you uploaded, because "
        + ("it is" if len(files) == 1 else "they are")
        + " in a folder inside your drop folder, where nothing is imported:",
        "",
        *(f"  {shown(name)}" for name in files),
        "",
        "To import a file, upload it to the drop folder itself, not to a folder inside it.",
        "Files in the check/ folder are only checked, never imported. The files named",
        "above are left where they are.",
        "",
        f"This notice was sent by the user import service; replies go to {parseaddr(sender)[1]}.",
    ]
    message = envelope(
        sender=sender,
        recipient=recipient,
        subject=f"User import: {noun} in a subfolder not imported",
        now=now,
        message_id=f"{strays_id(files)}.{tenant}",
        service_address=service_address,
    )
    message.set_content("\n".join(lines) + "\n")
    return message


def summary_message(
    *,
    tenant: str,
    batch_id: str,
    sender: str,
    recipient: str,
    files: Sequence[FileSummary],
    now: float,
    service_address: str | None = None,
) -> EmailMessage:
    """The short summary of a batch where nothing failed (``notify = "always"``)."""
    total = sum(f.counts.total for f in files)
    imported = sum(f.counts.imported for f in files)
    unchanged = sum(f.counts.unchanged for f in files)
    subject = f"User import: {counted(total, 'user')} up to date"
    if imported and not unchanged:
        subject = f"User import: all {counted(total, 'user')} imported"
    elif imported:
        subject = (
            f"User import: {imported:,} of {counted(total, 'user')} imported, the rest up to date"
        )
    when = time.strftime("%d %b %Y, %H:%M UTC", time.gmtime(now))
    lines = [f"The user import that finished on {when} went through without a failure.", ""]
    for f in files:
        c = f.counts
        lines.append(
            f"{shown(f.name)}: {counted(c.total, 'row')}, {c.imported:,} imported, "
            f"{c.unchanged:,} already up to date, {c.failed:,} not imported."
        )
        lines.extend(f"  Note: {note}" for note in f.notes)
    lines += [
        "",
        "Users already up to date were not sent again: nothing about them changed.",
        f"This summary was sent by the user import service; replies go to {parseaddr(sender)[1]}.",
    ]
    message = envelope(
        sender=sender,
        recipient=recipient,
        subject=subject,
        now=now,
        message_id=f"{batch_id}.{tenant}",
        service_address=service_address,
    )
    message.set_content("\n".join(lines) + "\n")
    return message


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CheckAnswer:
    """What a check found in one file, as its answer's email tells it.

    ``answer`` and ``answer_csv`` are the names of the answers written beside
    the file in ``check/`` (the csv only when rows would fail);
    ``attachment`` the name the failed rows are attached under, when they
    are listed; ``reasons`` the commonest reasons (count, a sentence).
    """

    name: str
    rows: int
    failed: int
    file_error: str | None = None
    reasons: tuple[tuple[int, str], ...] = ()
    answer: str | None = None
    answer_csv: str | None = None
    attachment: str | None = None
    changes: str | None = None  # what importing it would do, in one line (changes_line)
    notes: tuple[str, ...] = ()  # what reading it noted: the workbook's sheet, numbers as text


def changes_line(changes: ChangeSummary) -> str:
    """What a file would do, in one line: "would add 12, change 340 (email 300), leave ...".

    Column names and counts only; a hold says why.
    """
    parts = [f"would add {changes.new:,}"]
    columns = ", ".join(f"{name} {count:,}" for name, count in changes.columns[:5])
    parts.append(f"change {changes.changed:,}" + (f" ({columns})" if columns else ""))
    parts.append(f"leave {changes.rows - changes.new - changes.changed:,} unchanged")
    if changes.deactivate:
        parts.append(f"deactivate {changes.deactivate:,}")
    elif changes.missing:
        parts.append(f"report {changes.missing:,} missing")
    line = ", ".join(parts)
    if changes.hold == "small_snapshot":
        line += "; it would be held for review: it names far fewer users than were imported before"
    elif changes.hold == "changes":
        line += "; it would be held for review: it changes too many users at once"
    return line


def check_subject(answers: Sequence[CheckAnswer]) -> str:
    """The subject of a check's answer: what would happen to the files if they were imported."""
    if len(answers) == 1:
        (a,) = answers
        if a.file_error is not None:
            return f"Check of {shown(a.name)}: the file would not be imported"
        if a.failed:
            return f"Check of {shown(a.name)}: {a.failed:,} of {counted(a.rows, 'row')} would fail"
        return f"Check of {shown(a.name)}: all {counted(a.rows, 'row')} would import"
    whole = sum(1 for a in answers if a.file_error is not None)
    partly = sum(1 for a in answers if a.file_error is None and a.failed)
    parts = [f"{whole:,} would not be imported"] if whole else []
    parts += [f"{partly:,} would partly fail"] if partly else []
    return f"Checks of {counted(len(answers), 'file')}: " + (
        ", ".join(parts) if parts else "all would import"
    )


def _check_lines(answer: CheckAnswer, attached: Collection[str]) -> list[str]:
    """One file's part of a check's answer."""
    lines = [shown(answer.name)]
    if answer.file_error is not None:
        lines.append(f"  The file would not be imported: {answer.file_error}")
    else:
        lines.append(
            f"  {counted(answer.rows, 'row')}: {answer.rows - answer.failed:,} would import, "
            f"{answer.failed:,} would fail."
        )
        if answer.reasons:
            lines.append("  Most common reasons:")
            lines.extend(reason_lines(answer.reasons))
        lines.extend(f"  Note: {note}" for note in answer.notes)
        if answer.changes is not None:
            lines.append(f"  Imported now, it {answer.changes}.")
    if answer.attachment is not None and answer.attachment in attached:
        lines.append(f"  The rows that would fail are attached as {answer.attachment}, with why.")
    elif answer.answer_csv is not None:
        lines.append(f"  The rows that would fail are listed in check/{shown(answer.answer_csv)}.")
    if answer.answer is not None:
        lines.append(f"  The answer for scripts is check/{shown(answer.answer)}.")
    return lines


def check_message(
    *,
    tenant: str,
    check_id: str,
    sender: str,
    recipient: str,
    answers: Sequence[CheckAnswer],
    attachments: Mapping[str, bytes],
    now: float,
    service_address: str | None = None,
) -> EmailMessage:
    """The answer to files put in ``check/``: what an import would do, nothing imported.

    Answers finished close together go out as one message; ``attachments``
    are the failed rows of those that fit, by attachment name.
    """
    if len(answers) == 1:
        lines = [
            f"You put {shown(answers[0].name)} in the check folder: it was checked, and",
            "nothing was imported. If it were imported now:",
            "",
        ]
    else:
        lines = [
            f"You put {counted(len(answers), 'file')} in the check folder: they were checked,",
            "and nothing was imported. If they were imported now:",
            "",
        ]
    for answer in answers:
        lines += [*_check_lines(answer, attachments), ""]
    lines += [
        "The files themselves are in check/.bak.",
        f"This answer was sent by the user import service; replies go to {parseaddr(sender)[1]}.",
    ]
    message = envelope(
        sender=sender,
        recipient=recipient,
        subject=check_subject(answers),
        now=now,
        message_id=f"{check_id}.check.{tenant}",
        service_address=service_address,
    )
    message.set_content("\n".join(lines) + "\n")
    for name, data in attachments.items():
        message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return message
