"""The message a customer gets when the safeguard holds an import.

Pure: counts, column names and file names in, an email out; no value from a
customer's rows is in it. The failure report (:mod:`watcher.core.reporting`)
remains the one message that lists rows.
"""

from __future__ import annotations

import time
from email.utils import parseaddr
from typing import TYPE_CHECKING

from watcher.core.names import shown
from watcher.core.reporting import envelope
from watcher.core.wording import counted

if TYPE_CHECKING:
    from collections.abc import Sequence
    from email.message import EmailMessage

    from watcher.core.changes import ChangeSummary

__all__ = ["hold_message", "hold_subject"]


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
