"""The shapes of the status document: what the service writes, and people and scripts read.

The running service writes :class:`LiveStatus` every second; ``watcher
status`` (and ``--json``), the status page and the metrics read a
:class:`Status` built from it and from the journal; a tenant's page adds its
recent batches and rows per day (:class:`TenantDetail`). Typed, in one place,
so writer and readers cannot drift apart; JSON as they are. No value from a
customer's rows is in any of them: counts, codes, file names and times.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

__all__ = [
    "CheckLane",
    "DayRows",
    "FileStatus",
    "HeldBatch",
    "Importing",
    "LastBatch",
    "LiveStatus",
    "LiveTenant",
    "Outbox",
    "Owner",
    "PastBatch",
    "PastCheck",
    "PendingReason",
    "SchemaInForce",
    "Status",
    "TenantDetail",
    "TenantStatus",
]


class FileStatus(TypedDict):
    """A file the service tracks, and what it waits for."""

    name: str
    state: str


class SchemaInForce(TypedDict):
    """The schema a tenant's files are validated with."""

    version: str
    digest: str
    path: str


class Importing(TypedDict):
    """A tenant's import to its API as it runs: what flies, what may, what comes back."""

    in_flight: int
    limit: float  # requests the API may have in flight, as learnt from its answers
    rate: float  # answers a second, over the last second


class LiveTenant(TypedDict):
    """What the running service knows of one tenant."""

    folder_ok: bool
    files: list[FileStatus]
    batch_in: float | None
    batch_running: bool
    schema: SchemaInForce | None
    schema_on_disk: list[str] | None
    importing: NotRequired[Importing | None]  # while it sends to its API


class LiveStatus(TypedDict):
    """The status file's content."""

    pid: int
    updated_at: float
    tenants: dict[str, LiveTenant]
    config_refused: NotRequired[str | None]  # why the last change of configuration was refused


class LastBatch(TypedDict):
    """A tenant's most recent finished batch; ``missing`` users a full snapshot lacked."""

    id: str
    finished_at: float | None
    files: int
    rows: int
    imported: int
    unchanged: int
    failed: int
    missing: int
    deactivated: int


class HeldBatch(TypedDict):
    """A batch the safeguard holds for an operator, and why (``changes`` or ``small_snapshot``)."""

    id: str
    since: float
    files: int
    rows: int
    changed: int
    known: int
    columns: list[str]
    reason: str | None
    deactivate: int
    missing: int


class PendingReason(TypedDict):
    """Why rows are pending, and since when."""

    reason: str
    since: float


class Outbox(TypedDict):
    """A tenant's reports not sent.

    ``since`` is when the oldest waiting message was queued and ``error``
    why its last try failed (None until one did); ``late`` says it has
    waited longer than mail should.
    """

    waiting: int
    rejected: int
    since: float | None
    error: str | None
    late: bool


class Owner(TypedDict):
    """With a shared database: the instance that owns a tenant, and for how long yet."""

    instance: str
    host: str | None
    live: bool  # False: the lease ran out, another instance takes the tenant soon
    expires_in: float  # seconds, by the database's clock; negative once run out


class CheckLane(TypedDict):
    """A tenant's check lane over the last week: files answered, how many clean, the last."""

    files: int
    clean: int  # no failing row and no failure of the file's own
    last: float | None


class TenantStatus(LiveTenant):
    """Everything ``watcher status`` shows of one tenant."""

    drop_dir: str
    owner: Owner | None  # None without a shared database, or while nobody owns it
    last_batch: LastBatch | None
    unfinished_batches: int
    pending_rows: int
    pending_reason: PendingReason | None
    held: list[HeldBatch]
    outbox: Outbox
    checks: CheckLane


class Status(TypedDict):
    """Everything ``watcher status`` shows."""

    running: bool
    pid: int | None
    status_age: float | None
    instance: str | None  # this host's instance, with a shared database
    tenants: dict[str, TenantStatus]
    config_refused: NotRequired[str | None]  # the running service refused a changed configuration


class PastBatch(TypedDict):
    """One of a tenant's recent batches, as its page lists it."""

    id: str
    state: str
    created_at: float
    received_at: float  # when its first file arrived (its start, for older batches)
    finished_at: float | None
    files: list[str]
    rows: int
    imported: int
    unchanged: int
    failed: int
    pending: int
    missing: int
    deactivated: int
    codes: list[tuple[str, int]]


class DayRows(TypedDict):
    """Rows of a tenant's batches finished on one day (UTC)."""

    day: str
    imported: int
    unchanged: int
    failed: int


class PastCheck(TypedDict):
    """A file the check lane answered, as the tenant's page lists it."""

    name: str
    checked_at: float
    rows: int
    failed: int
    code: str | None


class TenantDetail(TypedDict):
    """A tenant's page: its status, its last batches and checks, its rows per day."""

    name: str
    status: TenantStatus
    recent: list[PastBatch]
    checks: list[PastCheck]
    daily: list[DayRows]
