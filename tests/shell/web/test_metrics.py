"""The counters a finished batch adds to, read back as Prometheus text."""

from __future__ import annotations

from prometheus_client import generate_latest

from tests.shell.web.test_listener import sample
from watcher.core.records import BatchRecord, BatchView, MissingCounts
from watcher.core.states import BatchState
from watcher.shell.web.metrics import Metrics, Waiting


def test_a_full_snapshots_missing_users_are_counted_by_what_became_of_them() -> None:
    """12 missing: 9 deactivated, 2 refused, 1 only reported; a partial tenant's stay at zero."""
    metrics = Metrics(["jcu", "other"], lambda: Waiting({}, {}, {}, {}, {}))
    batch = BatchRecord(
        id="b1", tenant="jcu", state=BatchState.DONE, created_at=0.0, finished_at=1.0, stopped=None
    )
    missing = MissingCounts(total=12, deactivated=9, refused=2, pending=0)
    metrics.batch_done(BatchView(batch=batch, files=(), missing=missing), duration=1.0, now=1.0)
    text = generate_latest(metrics.registry).decode()
    name = "user_import_missing_users_total"
    found = {
        o: sample(text, name, tenant="jcu", outcome=o)
        for o in ("reported", "deactivated", "refused")
    }
    assert found == {"reported": 1.0, "deactivated": 9.0, "refused": 2.0}
    assert sample(text, name, tenant="other", outcome="deactivated") == 0.0
