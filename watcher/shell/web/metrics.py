"""The service's Prometheus metrics: one prefix, base units, ``tenant`` from the configuration.

Counters and histograms are counted as things happen (batches, files, rows,
API requests); gauges of what is waiting now (pending rows, the outbox, held
batches, the last batch's age, whether each drop folder is watched) are read
from the journal and the running service when Prometheus scrapes. A
``tenant`` label only ever takes a configured tenant's name, never anything
from a file. ``deploy/METRICS.md`` lists every metric.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from watcher import __version__
from watcher.shell.journal import Journal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from prometheus_client.metrics_core import Metric

    from watcher.core.records import BatchView, Counts
    from watcher.shell.statedir import StateDir

__all__ = ["FILE_OUTCOMES", "Metrics", "Waiting", "read_waiting", "status_class"]

FILE_OUTCOMES = ("imported", "unchanged", "partly_imported", "not_imported", "refused")
# A batch is done only when no row waits: rows waiting are the pending_rows gauge.
_ROW_OUTCOMES = ("imported", "unchanged", "failed")
_MISSING_OUTCOMES = ("reported", "deactivated", "refused")
# Few buckets: every one is a series per tenant, and a host may serve hundreds.
_DURATIONS = (1, 5, 15, 60, 300, 900, 3600)
_LATENCIES = (60, 300, 600, 900, 1800, 3600, 21600)


def status_class(status: int | None) -> str:
    """``2xx`` .. ``5xx`` for an HTTP status, ``error`` when no answer came."""
    return "error" if status is None else f"{status // 100}xx"


class Waiting:
    """What waits now, per tenant, read when Prometheus scrapes."""

    def __init__(
        self,
        pending: dict[str, int],
        outbox: dict[str, int],
        held: dict[str, int],
        last: dict[str, float],
        watched: dict[str, bool],
    ) -> None:
        self.pending = pending
        self.outbox = outbox
        self.held = held
        self.last = last
        self.watched = watched


def read_waiting(state: StateDir, watched: dict[str, bool]) -> Waiting:
    """What waits now, per tenant, from the journal (read-only); ``watched`` from the service."""
    if not state.has_journal():
        return Waiting({}, {}, {}, {}, watched)
    journal = Journal(state.journal, read_only=True)
    try:
        history = journal.history
        last = {name: past.finished_at or 0.0 for name, past in history.last_done().items()}
        return Waiting(history.pending(), history.outbox(), history.held(), last, watched)
    finally:
        journal.close()


class Metrics:
    """The metrics of one service, in a registry of their own."""

    def __init__(
        self,
        tenants: Sequence[str],
        waiting: Callable[[], Waiting],
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Register every metric, each tenant's series at zero.

        Args:
            tenants: the configured tenants' names: the only ``tenant`` labels.
            waiting: reads what waits now (from the journal and the service).
            clock: the wall clock, for the heartbeat and the ages of what waits.
        """
        self.clock = clock
        # No ``_created`` series: they would double the samples and say nothing
        # the counters' resets do not.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.tenants = tuple(tenants)
        self.registry = CollectorRegistry()
        r = self.registry
        self.files = Counter(
            "user_import_files", "Files processed, by outcome", ["tenant", "outcome"], registry=r
        )
        self.rows = Counter(
            "user_import_rows",
            "Rows of processed files, by outcome",
            ["tenant", "outcome"],
            registry=r,
        )
        self.missing = Counter(
            "user_import_missing_users",
            "Known users a full snapshot lacked, by what became of them",
            ["tenant", "outcome"],
            registry=r,
        )
        self.requests = Counter(
            "user_import_api_requests",
            "Requests to the User Import API, by status class",
            ["tenant", "status_class"],
            registry=r,
        )
        self.retries = Counter(
            "user_import_api_retries", "Requests to the API sent again", ["tenant"], registry=r
        )
        self.batch_duration = Histogram(
            "user_import_batch_duration_seconds",
            "How long a batch took, claim to archive",
            ["tenant"],
            buckets=_DURATIONS,
            registry=r,
        )
        self.latency = Histogram(
            "user_import_upload_to_import_seconds",
            "From a file's arrival to its archive",
            ["tenant"],
            buckets=_LATENCIES,
            registry=r,
        )
        self.in_flight = Gauge(
            "user_import_api_in_flight",
            "Requests to the API in flight now",
            ["tenant"],
            registry=r,
        )
        self.limit = Gauge(
            "user_import_api_concurrency_limit",
            "Requests the API may have in flight, as learnt from its answers",
            ["tenant"],
            registry=r,
        )
        self.rate = Gauge(
            "user_import_api_answers_per_second",
            "Answers the API gave a tenant's import over the last second (0: not importing)",
            ["tenant"],
            registry=r,
        )
        self.heartbeat = Gauge(
            "user_import_heartbeat_timestamp_seconds",
            "When the service last said it was alive",
            registry=r,
        )
        Gauge("user_import_build_info", "The service's version", ["version"], registry=r).labels(
            __version__
        ).set(1)
        self._waiting = _Waiting(self.tenants, waiting, clock)
        r.register(self._waiting)
        self.add_tenants(self.tenants)

    def add_tenants(self, names: Sequence[str]) -> None:
        """Give tenants (configured at start or added since) their series, at zero."""
        self.tenants = tuple(dict.fromkeys((*self.tenants, *names)))
        self._waiting.tenants = self.tenants
        for tenant in names:
            for outcome in FILE_OUTCOMES:
                self.files.labels(tenant, outcome)
            for outcome in _ROW_OUTCOMES:
                self.rows.labels(tenant, outcome)
            for outcome in _MISSING_OUTCOMES:
                self.missing.labels(tenant, outcome)
            self.retries.labels(tenant)
            self.batch_duration.labels(tenant)
            self.latency.labels(tenant)
            self.in_flight.labels(tenant)
            self.limit.labels(tenant)

    def batch_done(self, view: BatchView, *, duration: float, now: float) -> None:
        """Count a finished batch: its files, rows, duration and each file's latency."""
        tenant = view.batch.tenant
        if tenant not in self.tenants:
            return
        for file in view.files:
            outcome = _file_outcome(file.record.state, file.record.code, file.counts)
            self.files.labels(tenant, outcome).inc()
            self.latency.labels(tenant).observe(max(0.0, now - file.record.received_at))
        counts = view.counts
        for outcome, value in (
            ("imported", counts.imported),
            ("unchanged", counts.unchanged),
            ("failed", counts.failed),
        ):
            if value:
                self.rows.labels(tenant, outcome).inc(value)
        gone = view.missing
        reported = gone.total - gone.deactivated - gone.refused - gone.pending
        for outcome, value in (
            ("reported", reported),
            ("deactivated", gone.deactivated),
            ("refused", gone.refused),
        ):
            if value:
                self.missing.labels(tenant, outcome).inc(value)
        self.batch_duration.labels(tenant).observe(duration)

    def flight(self, tenant: str, in_flight: int, limit: float, rate: float) -> None:
        """The requests a push has in flight now, its limit, its answers a second."""
        if tenant in self.tenants:
            self.in_flight.labels(tenant).set(in_flight)
            self.limit.labels(tenant).set(round(limit, 2))
            self.rate.labels(tenant).set(rate)

    def request(self, tenant: str, status: int | None) -> None:
        """Count one request to the API by how it was answered."""
        if tenant in self.tenants:
            self.requests.labels(tenant, status_class(status)).inc()

    def retry(self, tenant: str) -> None:
        """Count one request sent again."""
        if tenant in self.tenants:
            self.retries.labels(tenant).inc()

    def beat(self) -> None:
        """The service is alive."""
        self.heartbeat.set(self.clock())


def _file_outcome(state: str, code: str | None, counts: Counts) -> str:
    if state == "refused":
        return "refused"
    if code is not None or (counts.failed and not counts.imported and not counts.unchanged):
        return "not_imported"
    if counts.failed or counts.pending:
        return "partly_imported"
    if counts.total and counts.unchanged == counts.total:
        return "unchanged"
    return "imported"


class _Waiting(Collector):
    """Gauges of what waits now, read at each scrape."""

    def __init__(
        self, tenants: tuple[str, ...], waiting: Callable[[], Waiting], clock: Callable[[], float]
    ) -> None:
        self.tenants = tenants
        self.waiting = waiting
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self.clock()
        found = self.waiting()
        gauges = {
            "pending": GaugeMetricFamily(
                "user_import_pending_rows", "Rows waiting for the API", labels=["tenant"]
            ),
            "outbox": GaugeMetricFamily(
                "user_import_outbox_messages", "Messages waiting to be sent", labels=["tenant"]
            ),
            "held": GaugeMetricFamily(
                "user_import_held_batches", "Batches held for an operator", labels=["tenant"]
            ),
            "age": GaugeMetricFamily(
                "user_import_last_batch_age_seconds",
                "Seconds since the tenant's last finished batch (absent before the first)",
                labels=["tenant"],
            ),
            "watched": GaugeMetricFamily(
                "user_import_drop_folder_watched",
                "Whether the tenant's drop folder is watched (1) or not (0)",
                labels=["tenant"],
            ),
        }
        for tenant in self.tenants:
            gauges["pending"].add_metric([tenant], found.pending.get(tenant, 0))
            gauges["outbox"].add_metric([tenant], found.outbox.get(tenant, 0))
            gauges["held"].add_metric([tenant], found.held.get(tenant, 0))
            if tenant in found.last:
                gauges["age"].add_metric([tenant], max(0.0, now - found.last[tenant]))
            gauges["watched"].add_metric([tenant], 1 if found.watched.get(tenant) else 0)
        yield from gauges.values()
