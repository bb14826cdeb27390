"""How many requests the API may have in flight, learnt from how it answers.

The limit is a number of requests in flight (at least 1, at most
``max_concurrency``), and requests start evenly spaced, one every
``latency / limit`` seconds, so a limit of 3.4 means a rate of 3.4 requests
per round trip, not a jump from 3 to 4. It moves by the rules below:

- **start**: it doubles every round trip while every answer is accepted,
  until the first 429 or 503, or ``max_concurrency`` (latency is not
  trusted yet: new connections answer slowly at first);
- **additive increase**: afterwards it grows by a small share per second of
  quick, accepted answers (:data:`GROWTH`), so it comes back to where the API
  refused slowly, and probes past it rarely;
- **multiplicative decrease**: a 429 or a 503 takes it down to
  :data:`DECREASE` of itself, or to what the API accepted over the last ten
  round trips times the round trip (what it takes in flight), if that is
  less, but never below half: the first refusals after the start cost a
  step or two, not twenty; once per
  round trip (the requests already in flight are answered the same way and
  are not counted again);
- **latency**: so does a smoothed latency over three times the baseline, the
  median answer of the last ten seconds (not the quickest: the first answer
  on a new connection is often many times quicker than the rest, and a rule
  against it would drive the limit to 1 against an API that is simply like
  that), judged at most once a second and only when throughput stopped
  rising with the limit (a limit that grew and brought more answers per
  second is not loading the API, however the latency moved);
- a ``Retry-After`` pauses every request, not only the one that got it.

Pure: the clock is passed in; :class:`watcher.shell.targets.api.ApiSink` waits on it.
"""

from __future__ import annotations

import collections
import dataclasses
import statistics
from typing import Literal

__all__ = ["DECREASE", "GROWTH", "Change", "Pace"]

DECREASE = 0.9
GROWTH = 0.05  # of the limit, per second of quick, accepted answers
_START = 4.0
_SMOOTHING = 0.125
_LOAD = 3.0  # smoothed latency over the baseline that means the API is loaded
_BASELINE_WINDOW = 10.0  # seconds of answers the baseline is the median of
_BASELINE_SAMPLES = 256  # at most this many of them, spread over the window:
_SAMPLE_EVERY = _BASELINE_WINDOW / _BASELINE_SAMPLES  # at most one answer kept per 40 ms
_BASELINE_LEAST = 32  # fewer answers than this: no baseline yet
_RISING = 1.05  # answers per second up by this much with the limit: not loaded
# Latency is judged at most this often: a new connection's first answer is
# slow too, and must not count as load.
_LATENCY_EVERY = 1.0
_RATE_WINDOW = 1.0  # seconds of accepted answers that tell what the API takes
_RATE_SAMPLES = 8

Change = Literal["grew", "shrank"]


@dataclasses.dataclass(slots=True)
class Pace:
    """The limit of one push, and what it has learnt of the API's latency."""

    max_concurrency: int
    limit: float = 0.0
    starting: bool = True
    latency: float | None = None  # smoothed
    paused_until: float = 0.0
    last_decrease: float = float("-inf")
    last_growth: float | None = None
    low: float = float("inf")
    high: float = 0.0
    accepted: collections.deque[float] = dataclasses.field(default_factory=collections.deque)
    # (when, latency) of recent answers, for the baseline.
    answers: collections.deque[tuple[float, float]] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=_BASELINE_SAMPLES)
    )
    judged_at: float = float("-inf")
    # The limit and the rate of answers when latency was last judged.
    judged: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not self.limit:
            self.limit = min(_START, float(self.max_concurrency))
        self._seen()

    @property
    def slots(self) -> int:
        """How many requests may be in flight now."""
        return max(1, int(self.limit))

    def spacing(self) -> float:
        """Seconds between two request starts: one round trip shared by the limit.

        None at the maximum: answers space the requests well enough there, and
        a timer per start would cost a tenth of the rate.
        """
        if self.latency is None or self.limit >= self.max_concurrency:
            return 0.0
        return self.latency / self.limit

    def pause(self, until: float) -> None:
        """The API asked for a wait (``Retry-After``): nothing starts before ``until``."""
        self.paused_until = max(self.paused_until, until)

    def answered(self, *, latency: float, now: float) -> Change | None:
        """A request was accepted (or refused for its own content) after ``latency`` seconds."""
        self.accepted.append(now)
        while now - self.accepted[0] > _RATE_WINDOW:
            self.accepted.popleft()
        if not self.answers or now - self.answers[-1][0] >= _SAMPLE_EVERY:
            self.answers.append((now, latency))
        self.latency = (
            latency
            if self.latency is None
            else self.latency + _SMOOTHING * (latency - self.latency)
        )
        if (
            not self.starting
            and now - self.judged_at >= _LATENCY_EVERY
            and now - self.last_decrease >= _LATENCY_EVERY
            and self._loaded(now)
        ):
            return self.overloaded(now=now, refused=False)
        previous = self.limit
        if self.starting:
            # Doubling per round trip: one more for each answer.
            self.limit = min(float(self.max_concurrency), self.limit + 1.0)
            if self.limit >= self.max_concurrency:
                self.starting = False
        elif self.last_growth is not None:
            elapsed = min(now - self.last_growth, 1.0)
            self.limit = min(float(self.max_concurrency), self.limit * (1 + GROWTH * elapsed))
        self.last_growth = now
        self._seen()
        return "grew" if int(self.limit) > int(previous) else None

    def overloaded(self, *, now: float, refused: bool = True) -> Change | None:
        """A 429 or 503 (``refused``), or latency rising: shrink, once per round trip.

        Only a refusal cuts the limit to what the API took: a slow answer
        may be the client's own pause, and is worth one step down at most.
        """
        self.starting = False
        self.last_growth = now
        round_trip = self.latency or 0.0
        if now - self.last_decrease < round_trip:
            return None
        self.last_decrease = now
        limit = self.limit * DECREASE
        taken = self._taken(now) if refused else None
        if taken is not None:
            limit = min(limit, max(taken, self.limit / 2))
        self.limit = max(1.0, limit)
        self._seen()
        return "shrank"

    def rate(self) -> float:
        """Answers accepted per second, over the second before the latest answer."""
        return len(self.accepted) / _RATE_WINDOW

    def _loaded(self, now: float) -> bool:
        """Whether latency says the API is loaded: well over its baseline, throughput flat."""
        self.judged_at = now
        rate, before = self.rate(), self.judged
        self.judged = (self.limit, rate)
        kept = [latency for at, latency in self.answers if now - at <= _BASELINE_WINDOW]
        if len(kept) < _BASELINE_LEAST or self.latency is None:
            return False
        if self.latency <= _LOAD * statistics.median(kept):
            return False
        # More in flight brought more answers a second: the API is keeping up.
        rising = before is not None and self.limit > before[0] and rate > before[1] * _RISING
        return not rising

    def _taken(self, now: float) -> float | None:
        """How many requests in flight the API took lately: accepted per second times latency.

        Over the last ten round trips: long enough to count, short enough not
        to reach back into a start that was still ramping up.
        """
        if self.latency is None:
            return None
        window = min(max(10 * self.latency, 0.05), _RATE_WINDOW)
        recent = [at for at in self.accepted if now - at <= window]
        if len(recent) < _RATE_SAMPLES:
            return None
        return len(recent) / max(now - recent[0], self.latency) * self.latency

    def _seen(self) -> None:
        self.low = min(self.low, self.limit)
        self.high = max(self.high, self.limit)
