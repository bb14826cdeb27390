"""The messages a customer gets besides the failure report: held, summary, check.

- a hold notice, when the safeguard holds an import (counts and column names);
- a summary after every batch that had no failure, with ``notify = "always"``;
- the answer to a file put in the check folder, which is never imported.

Pure: counts, column names and file names in, an email out. Only a check's
answer carries values: the rows that would fail, attached as the failure
report attaches them (:mod:`watcher.core.reporting`).
"""

from __future__ import annotations

import time
from email.utils import parseaddr
from typing import TYPE_CHECKING

from watcher.core.names import shown
from watcher.core.reporting import common_reasons, envelope
from watcher.core.wording import counted

if TYPE_CHECKING:
    from collections.abc import Sequence
    from email.message import EmailMessage

    from watcher.core.changes import ChangeSummary
    from watcher.core.reporting import FileSummary

__all__ = [
    "check_message",
    "check_subject",
    "hold_message",
    "hold_subject",
    "summary_message",
]


def hold_subject(changes: ChangeSummary) -> str:
    """The subject of a hold notice: how many known users the import would change."""
    return (
        f"User import on hold: it would change {changes.changed:,} of "
        f"{counted(changes.known, 'user')}"
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
    """
    when = time.strftime("%Y-%m-%d at %H:%M UTC", time.gmtime(received_at))
    lines = [
        f"The user import received on {when} was put on hold: nothing was imported.",
        "",
        (
            f"It would change {changes.changed:,} of the {counted(changes.known, 'user')} "
            f"imported before ({changes.share:.0%}), more than the {allowed:.0%} one import "
            "may change without a review. This often means columns were swapped, an old "
            "export was sent, or the file belongs to another organisation."
        ),
    ]
    if changes.columns:
        lines += ["", "The columns that would change the most users:"]
        lines += [f"  {name}: {counted(count, 'user')}" for name, count in changes.columns]
    lines += ["", "Files held:"]
    lines += [f"  {shown(name)}: {counted(rows, 'row')}" for name, rows in files]
    lines += [
        "",
        "An administrator will look at it and either let it through or discard it; you will",
        "get a report either way. Files you upload meanwhile wait behind this one. If the",
        f"file is wrong, say so to {parseaddr(sender)[1]} and upload the corrected file.",
    ]
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


def check_subject(name: str, rows: int, failed: int, *, file_error: bool) -> str:
    """The subject of a check's answer: what would happen to the file if it were imported."""
    if file_error:
        return f"Check of {shown(name)}: the file would not be imported"
    if failed:
        return f"Check of {shown(name)}: {failed:,} of {counted(rows, 'row')} would fail"
    return f"Check of {shown(name)}: all {counted(rows, 'row')} would import"


def check_message(
    *,
    tenant: str,
    check_id: str,
    sender: str,
    recipient: str,
    file: FileSummary,
    attachment: tuple[str, bytes] | None,
    now: float,
    service_address: str | None = None,
) -> EmailMessage:
    """The answer to a file put in ``check/``: what an import would do, nothing imported."""
    c = file.counts
    lines = [
        f"You put {shown(file.name)} in the check folder: it was checked, and nothing was",
        "imported. If it were imported now:",
        "",
    ]
    if file.file_error is not None:
        lines.append(f"  The file would not be imported: {file.file_error}")
    else:
        lines.append(
            f"  {counted(c.total, 'row')}: {c.imported:,} would import, {c.failed:,} would fail."
        )
        if file.reasons:
            lines.append("  Most common reasons:")
            lines.extend(f"    {n:,} x {reason}" for n, reason in common_reasons(file.reasons))
    if attachment is not None:
        lines += ["", f"The rows that would fail are attached as {attachment[0]}, with why."]
    lines += [
        "",
        f"The same answer is in the check folder as {shown(file.name)}.check.json (and",
        f"{shown(file.name)}.check.csv when rows would fail); the file itself is in check/.bak.",
        f"This answer was sent by the user import service; replies go to {parseaddr(sender)[1]}.",
    ]
    message = envelope(
        sender=sender,
        recipient=recipient,
        subject=check_subject(file.name, c.total, c.failed, file_error=file.file_error is not None),
        now=now,
        message_id=f"{check_id}.check.{tenant}",
        service_address=service_address,
    )
    message.set_content("\n".join(lines) + "\n")
    if attachment is not None:
        name, data = attachment
        message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    return message
