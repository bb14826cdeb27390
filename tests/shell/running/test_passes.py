"""Periodic passes: one tenant's failure is logged and backed off, never the end."""

from __future__ import annotations

import pytest
import structlog
from structlog.testing import capture_logs

from watcher.errors import StateError
from watcher.shell.running.passes import Passes


def boom() -> None:
    """A pass that raises with data in its message."""
    raise ValueError("row 7: jane@example.org")


def test_a_failing_pass_waits_twice_as_long_each_time_and_others_run() -> None:
    """5 s, then 10 s; another tenant's pass runs all along; the message never logged."""
    passes = Passes(structlog.get_logger(), first_delay=5.0, longest_delay=60.0)
    ran: list[str] = []
    with capture_logs() as logs:
        assert passes.run("retention", "jcu", boom, now=0.0) is None
        assert passes.run("retention", "jcu", lambda: ran.append("jcu"), now=4.9) is None
        assert passes.run("retention", "uoft", lambda: ran.append("uoft"), now=4.9) is None
        passes.run("retention", "jcu", boom, now=5.0)
        assert passes.run("retention", "jcu", lambda: ran.append("jcu"), now=14.9) is None
        assert passes.run("retention", "jcu", lambda: "done", now=15.0) == "done"
    assert ran == ["uoft"]
    failed = [e for e in logs if e["event"] == "service.pass_failed"]
    assert [(e["failures"], e["retry_in"]) for e in failed] == [(1, 5.0), (2, 10.0)]
    assert all("jane" not in str(e) for e in logs)
    assert failed[0]["where"].startswith("test_passes.py:")
    (back,) = [e for e in logs if e["event"] == "service.pass_recovered"]
    assert (back["tenant"], back["task"], back["failures"]) == ("jcu", "retention", 2)
    assert passes.failing() == []


def test_the_wait_stops_growing_at_the_longest() -> None:
    """Ten failures in a row wait the longest delay, not 5 x 2^9 seconds."""
    passes = Passes(structlog.get_logger(), first_delay=5.0, longest_delay=60.0)
    now = 0.0
    with capture_logs() as logs:
        for _ in range(10):
            passes.run("look", "jcu", boom, now=now)
            now += 3600
    assert logs[-1]["retry_in"] == 60.0
    assert passes.failing() == [("look", "jcu")]


def test_an_unusable_journal_is_not_a_pass_failure() -> None:
    """StateError goes to the loop, which decides: it is the service's, not a tenant's."""
    passes = Passes(structlog.get_logger())

    def unusable() -> None:
        raise StateError("the journal cannot be used")

    with pytest.raises(StateError):
        passes.run("rescan", "jcu", unusable, now=0.0)
    assert passes.failing() == []
