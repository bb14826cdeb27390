"""The limit of requests in flight, learnt from the API's answers (the clock passed in)."""

from __future__ import annotations

from watcher.core.pacing import DECREASE, Pace


def test_the_limit_starts_small_and_doubles_while_answers_are_quick() -> None:
    """From 4, one more per quick answer, up to the maximum; then start-up is over."""
    pace = Pace(max_concurrency=16)
    assert pace.slots == 4
    for i in range(12):
        pace.answered(latency=0.02, now=i * 0.005)
    assert (pace.slots, pace.starting) == (16, False)


def test_a_429_shrinks_the_limit_once_per_round_trip() -> None:
    """The requests already in flight answer the same way; they do not count again."""
    pace = Pace(max_concurrency=16, limit=10.0, starting=False)
    pace.answered(latency=0.02, now=0.0)
    assert pace.overloaded(now=1.0) == "shrank"
    assert pace.overloaded(now=1.005) is None
    assert pace.limit == 10.0 * DECREASE
    assert pace.overloaded(now=1.03) == "shrank"
    assert pace.limit == 10.0 * DECREASE * DECREASE


def test_after_a_429_the_limit_grows_back_slowly() -> None:
    """Five percent a second: ten seconds of quick answers from 9 bring it near 14.7."""
    pace = Pace(max_concurrency=32, limit=10.0, starting=False)
    pace.answered(latency=0.02, now=0.0)
    pace.overloaded(now=0.0)
    for step in range(1, 1001):
        pace.answered(latency=0.02, now=step * 0.01)
    assert 14.0 < pace.limit < 15.5


def test_rising_latency_shrinks_the_limit_as_a_429_does() -> None:
    """An API that slows down is loaded: twice the lowest latency, smoothed, is too much."""
    pace = Pace(max_concurrency=16, limit=8.0, starting=False)
    pace.answered(latency=0.02, now=0.0)
    changes = [pace.answered(latency=0.2, now=0.1 * i) for i in range(1, 10)]
    assert "shrank" in changes
    assert pace.limit < 8.0


def test_the_limit_never_leaves_one_to_the_maximum() -> None:
    """However many refusals, one request may still go; however quick, no more than asked."""
    pace = Pace(max_concurrency=3)
    for i in range(50):
        pace.overloaded(now=float(i))
    assert pace.slots == 1
    fresh = Pace(max_concurrency=3)
    for i in range(50):
        fresh.answered(latency=0.01, now=i * 0.01)
    assert fresh.slots == 3


def test_requests_are_spaced_over_a_round_trip_below_the_maximum() -> None:
    """A limit of 5 at 20 ms starts a request every 4 ms; none before an answer, none at the top."""
    pace = Pace(max_concurrency=8)
    assert pace.spacing() == 0.0
    pace.answered(latency=0.02, now=0.0)
    assert pace.spacing() == 0.02 / 5
    top = Pace(max_concurrency=4)
    top.answered(latency=0.02, now=0.0)
    assert top.spacing() == 0.0


def test_refusals_after_the_start_cut_the_limit_to_what_the_api_took() -> None:
    """Sixteen in flight, the API taking 100 a second at 20 ms: halved, then down to about 2."""
    pace = Pace(max_concurrency=16)
    for i in range(100):
        pace.answered(latency=0.02, now=i * 0.01)
    assert pace.limit == 16
    pace.overloaded(now=1.0)
    assert pace.limit == 8
    pace.overloaded(now=1.05)
    assert pace.limit == 4
    pace.overloaded(now=1.1)
    assert 1.5 < pace.limit < 2.5


def test_a_pause_only_ever_gets_longer() -> None:
    """Two Retry-After answers: the later end wins."""
    pace = Pace(max_concurrency=4)
    pace.pause(10.0)
    pace.pause(5.0)
    assert pace.paused_until == 10.0


def test_the_range_seen_is_kept_for_the_summary() -> None:
    """Lowest and highest limit over the push."""
    pace = Pace(max_concurrency=8, limit=6.0, starting=False)
    pace.answered(latency=0.02, now=0.0)
    pace.overloaded(now=1.0)
    assert (int(pace.low), int(pace.high)) == (5, 6)
