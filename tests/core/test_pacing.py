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


def feed(pace: Pace, *, start: float, seconds: float, rate: float, latency: float) -> list[object]:
    """Answers at ``rate`` a second for ``seconds``, each after ``latency``; the changes."""
    count = int(seconds * rate)
    return [pace.answered(latency=latency, now=start + i / rate) for i in range(count)]


def test_rising_latency_shrinks_the_limit_as_a_429_does() -> None:
    """An API that slows down is loaded: three times its usual latency, smoothed, is too much."""
    pace = Pace(max_concurrency=16, limit=8.0, starting=False)
    feed(pace, start=0.0, seconds=2.0, rate=400.0, latency=0.02)
    before = pace.limit
    changes = feed(pace, start=2.0, seconds=2.5, rate=40.0, latency=0.2)
    assert changes.count("shrank") == 2  # once a second while the slowness is news
    assert pace.limit < before
    # Slow for longer than half the baseline's window, 200 ms is how this API is now.
    assert "shrank" not in feed(pace, start=4.5, seconds=10.0, rate=40.0, latency=0.2)


def test_a_quick_first_answer_per_connection_does_not_drive_the_limit_down() -> None:
    """4 ms on each new connection, 44 ms after (no TCP_NODELAY): 16 stay 16, not 1."""
    pace = Pace(max_concurrency=16)
    # The start: each connection's first answer is quick.
    changes: list[object] = [pace.answered(latency=0.004, now=i * 0.0002) for i in range(16)]
    for second in range(60):  # then 16 in flight at 44 ms: 363 answers a second
        changes += feed(pace, start=1.0 + second, seconds=1.0, rate=363.0, latency=0.044)
        if second % 10 == 0:  # now and then a connection is made again
            changes.append(pace.answered(latency=0.004, now=1.999 + second))
    assert "shrank" not in changes
    assert pace.slots == 16


def test_slower_answers_that_bring_more_of_them_are_not_load() -> None:
    """Latency three times its baseline, but answers a second rising with the limit: kept."""
    pace = Pace(max_concurrency=64, limit=20.0, starting=False)
    feed(pace, start=0.0, seconds=3.0, rate=1000.0, latency=0.02)
    pace.judged_at = float("-inf")
    # Later answers are slower (0.07 s) yet, with the limit growing, more of them come.
    assert "shrank" not in feed(pace, start=3.0, seconds=1.0, rate=1200.0, latency=0.07)
    grown = pace.limit
    assert grown > 20.0
    # Once answers a second stop rising while latency stays high: load, and it shrinks.
    assert "shrank" in feed(pace, start=4.0, seconds=1.5, rate=1200.0, latency=0.07)
    assert pace.limit < grown


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
