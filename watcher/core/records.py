"""What the journal holds, as values: batches, files, messages, counts and reasons.

:class:`BatchView` is a batch as one step of it needs it: the batch, each
file with its row counts and its reasons for failing, read in one go.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

    from watcher.core.changes import ChangeSummary
    from watcher.core.states import BatchState, FileState, MessageState, Safeguard

__all__ = [
    "BatchRecord",
    "BatchView",
    "Counts",
    "FileRecord",
    "FileView",
    "Identity",
    "MessageRecord",
    "MissingCounts",
    "Reason",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """What a file was when it was looked at: device, inode, size and modification time."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> Identity:
        """The identity of a stat result."""
        return cls(dev=info.st_dev, ino=info.st_ino, size=info.st_size, mtime_ns=info.st_mtime_ns)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Counts:
    """Row counts of a file or a batch: total = imported + unchanged + failed + pending.

    Blank rows are counted apart (a file's ``rows_blank``): they are no users.
    A full snapshot's batch counts beside its rows the known users it lacks
    (``missing``) and those of them deactivated: they are no rows of a file.
    """

    total: int = 0
    imported: int = 0
    unchanged: int = 0
    failed: int = 0
    pending: int = 0
    missing: int = 0
    deactivated: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            total=self.total + other.total,
            imported=self.imported + other.imported,
            unchanged=self.unchanged + other.unchanged,
            failed=self.failed + other.failed,
            pending=self.pending + other.pending,
            missing=self.missing + other.missing,
            deactivated=self.deactivated + other.deactivated,
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MissingCounts:
    """A full snapshot's missing users: how many, deactivated, refused by the API, waiting.

    Users only reported are counted in ``total`` alone.
    """

    total: int = 0
    deactivated: int = 0
    refused: int = 0
    pending: int = 0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """One kind of failure in a file: how often, the field and code, an example message.

    A file's reasons are kept most frequent first.
    """

    count: int
    field: str | None
    code: str
    example: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchRecord:
    """A batch as the journal holds it.

    ``stopped`` is why it last stopped with rows pending, and since when it
    has been stopping (the first such stop); None when it never did.
    ``safeguard`` is where it is with the mass-change safeguard (None until
    checked) and ``changes`` what the check found, when it was checked.
    """

    id: str
    tenant: str
    state: BatchState
    created_at: float
    finished_at: float | None
    stopped: tuple[str, float] | None
    safeguard: Safeguard | None = None
    changes: ChangeSummary | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FileRecord:
    """A file as the journal holds it; ``code`` and ``message`` when it failed as a whole."""

    id: str
    batch_id: str
    tenant: str
    name: str
    state: FileState
    dev: int | None
    ino: int | None
    size: int | None
    mtime_ns: int | None
    sha256: str | None
    schema_digest: str | None
    code: str | None
    message: str | None
    encoding: str | None
    rows_blank: int
    archive_name: str | None
    received_at: float
    # What reading it noted for the customer (a workbook's sheet, numbers in text columns).
    notes: tuple[str, ...] = ()

    @property
    def identity(self) -> Identity | None:
        """The identity the file had when it was claimed; None for a refused entry."""
        if self.dev is None or self.ino is None or self.size is None or self.mtime_ns is None:
            return None
        return Identity(dev=self.dev, ino=self.ino, size=self.size, mtime_ns=self.mtime_ns)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FileView:
    """A file of a batch with its row counts and its reasons for failing."""

    record: FileRecord
    counts: Counts
    reasons: tuple[Reason, ...]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchView:
    """A batch with its files, as one step reads it."""

    batch: BatchRecord
    files: tuple[FileView, ...]
    missing: MissingCounts = MissingCounts()

    @property
    def id(self) -> str:
        """The batch's id."""
        return self.batch.id

    @property
    def counts(self) -> Counts:
        """The batch's row counts (the sum of its files'), and its missing users."""
        missing = Counts(missing=self.missing.total, deactivated=self.missing.deactivated)
        return sum((f.counts for f in self.files), missing)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """A report waiting in, or sent from, the outbox."""

    id: str
    batch_id: str
    tenant: str
    path: str
    state: MessageState
    attempts: int
    last_error: str | None
    sent_at: float | None = None
