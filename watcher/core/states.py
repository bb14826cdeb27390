"""The states a batch, a file, a row and a message go through, and the one order of steps.

A batch's steps always run in this order, each recorded before the next
begins, so a batch killed at any point resumes where the journal says it
stopped::

    claiming ─► importing ─► reporting ─► archiving ─► done
                    │
                    └─ stops here while the API is unavailable: rows stay pending

A batch that would change too many known users is held before its import
step sends anything (:class:`Safeguard`): it stays in ``importing`` until an
operator approves it (it is imported as if never held) or discards it (its
files fail with a reason the customer is told), and later batches of its
tenant wait behind it.

A file is ``claimed`` (copied into the spool) or ``refused`` (not read, with a
reason), then ``validated``, then ``archived``. A row is ``pending`` until the
API or the store answers, then ``imported`` or ``failed``; or ``unchanged``,
when it would send what was last confirmed for its user (not sent). A message is
``queued`` in the outbox, ``sending`` while one deliverer holds it, then
``sent`` or ``rejected`` (a server refused it for good).
"""

from __future__ import annotations

import enum

__all__ = [
    "STEP_ATTEMPTS",
    "UNFINISHED_FILE_STATES",
    "BatchState",
    "FileState",
    "MessageState",
    "MissingState",
    "RowState",
    "Safeguard",
    "next_step",
]


class BatchState(enum.StrEnum):
    """Where a batch is in its steps."""

    CLAIMING = "claiming"
    IMPORTING = "importing"
    REPORTING = "reporting"
    ARCHIVING = "archiving"
    DONE = "done"


class FileState(enum.StrEnum):
    """Where a file of a batch is."""

    CLAIMED = "claimed"
    REFUSED = "refused"
    VALIDATED = "validated"
    ARCHIVED = "archived"


class RowState(enum.StrEnum):
    """What became of one row of a file."""

    PENDING = "pending"
    IMPORTED = "imported"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class Safeguard(enum.StrEnum):
    """Where a batch is with the mass-change safeguard (unset until it is checked)."""

    PASSED = "passed"
    HELD = "held"
    APPROVED = "approved"
    DISCARDED = "discarded"


class MissingState(enum.StrEnum):
    """What became of a user a full snapshot lacks: reported, or deactivated (or refused)."""

    REPORTED = "reported"
    PENDING = "pending"
    DEACTIVATED = "deactivated"
    FAILED = "failed"


class MessageState(enum.StrEnum):
    """Where a report is on its way to the customer."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    REJECTED = "rejected"


# Tries at one step for one file (validating it, archiving it under the
# customer's name) before it is set aside: one upload must never block a tenant.
STEP_ATTEMPTS = 2

# Files an unfinished batch still holds: not yet moved into ``.bak``.
UNFINISHED_FILE_STATES = (FileState.CLAIMED, FileState.VALIDATED, FileState.REFUSED)

_NEXT = {
    BatchState.CLAIMING: BatchState.IMPORTING,
    BatchState.IMPORTING: BatchState.REPORTING,
    BatchState.REPORTING: BatchState.ARCHIVING,
    BatchState.ARCHIVING: BatchState.DONE,
}


def next_step(state: BatchState) -> BatchState:
    """The state a batch moves to when the step of ``state`` is done.

    Raises:
        ValueError: ``state`` is ``done``: a finished batch has no next step.
    """
    try:
        return _NEXT[state]
    except KeyError:
        raise ValueError(f"a batch in state {state} has no next step") from None
