"""Batch windows, with an injected clock."""

from __future__ import annotations

from watcher.core.batching import Batcher


def test_a_window_opens_at_the_first_file_and_closes_after_the_window() -> None:
    """Files ready within the window form one batch."""
    b = Batcher(60.0)
    b.add("a.csv", 10.0)
    b.add("b.csv", 50.0)
    assert b.deadline() == 70.0
    assert b.take(69.9, busy=False) == []
    assert b.take(70.0, busy=False) == ["a.csv", "b.csv"]
    assert (b.waiting, b.deadline()) == ((), None)


def test_a_running_batch_holds_the_next_one() -> None:
    """While the tenant's batch runs, the next waits, even past its window."""
    b = Batcher(1.0)
    b.add("a.csv", 0.0)
    assert b.take(5.0, busy=True) == []
    assert b.take(5.0, busy=False) == ["a.csv"]


def test_a_file_added_twice_counts_once_and_can_be_discarded() -> None:
    """Duplicates are ignored; a file that goes away leaves the window."""
    b = Batcher(1.0)
    b.add("a.csv", 0.0)
    b.add("a.csv", 0.5)
    b.discard("a.csv")
    assert (b.waiting, b.deadline(), b.take(9.0, busy=False)) == ((), None, [])
