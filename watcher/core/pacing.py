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
  are not counted again); so does a
  smoothed latency over three times the lowest seen lately, at most once a
  second (a busy client sees its own latency rise too: only an API that
  slows down markedly is taken as loaded);
- a ``Retry-After`` pauses every request, not only the one that got it.

Pure: the clock is passed in; :class:`watcher.shell.targets.api.ApiSink` waits on it.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Literal

__all__ = ["DECREASE", "GROWTH", "Change", "Pace"]

DECREASE = 0.9
GROWTH = 0.05  # of the limit, per second of quick, accepted answers
_START = 4.0
_SMOOTHING = 0.125
_LOAD = 3.0  # smoothed latency over the lowest that means the API is loaded
_MIN_WINDOW = 10.0  # seconds over which the lowest latency is remembered
# Rising latency shrinks the limit at most this often: a new connection's
# first answer is slow too, and must not count as load.
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
    lowest: float | None = None
    lowest_since: float = 0.0
    paused_until: float = 0.0
    last_decrease: float = float("-inf")
    last_growth: float | None = None
    low: float = float("inf")
    high: float = 0.0
    accepted: collections.deque[float] = dataclasses.field(default_factory=collections.deque)

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
        if self.lowest is None or latency < self.lowest or now - self.lowest_since > _MIN_WINDOW:
            self.lowest, self.lowest_since = latency, now
        self.latency = (
            latency
            if self.latency is None
            else self.latency + _SMOOTHING * (latency - self.latency)
        )
        loaded = self.latency > _LOAD * self.lowest
        if loaded and not self.starting and now - self.last_decrease >= _LATENCY_EVERY:
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
