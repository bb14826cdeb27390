"""Admitting one push's requests to the API: the learnt limit, the rate ceiling, pauses.

Before each request a worker waits at the :class:`Gate`: not while the API
asked for a pause (``Retry-After``), not beyond the limit of requests in
flight that :class:`watcher.core.pacing.Pace` learns from the answers, not
sooner than the limit's spacing, and never faster than the tenant's
``rate_limit``, a hard ceiling. After the answer the worker tells the gate
how it went, which is all the pace learns from.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from watcher.core.pacing import Pace

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from structlog.typing import FilteringBoundLogger

    from watcher.core.responses import Verdict

__all__ = ["Gate"]

# Answers that mean the API is overloaded: the limit shrinks.
_OVERLOAD = frozenset({429, 503})


class Gate:
    """The door every request of one push goes through."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        rate_limit: float | None,
        clock: Callable[[], float],
        pause: Callable[[float], Awaitable[None]],
        log: FilteringBoundLogger,
        on_flight: Callable[[int, float, float], None] | None = None,
    ) -> None:
        """Set up the gate.

        Args:
            max_concurrency: the most requests in flight at once.
            rate_limit: the most requests per second, if any.
            clock: the monotonic clock.
            pause: waits out a pause the API asked for (ends early on a stop).
            log: where changes of the limit are told, at debug level.
            on_flight: told the requests in flight, the limit and the answers
                a second whenever a request starts or ends (the metrics' gauges).
        """
        self.pace = Pace(max_concurrency=max_concurrency)
        self.rate_limit = rate_limit
        self.clock = clock
        self.pause = pause
        self.log = log
        self._in_flight = 0
        self._next_start = 0.0
        self._next_rated = 0.0
        self._rated = asyncio.Lock()
        self._freed = asyncio.Event()
        self._on_flight = on_flight or (lambda _, __, ___: None)

    def concurrency(self) -> tuple[int, int]:
        """The lowest and highest number of requests the limit let in flight at once."""
        return max(1, int(self.pace.low)), max(1, int(self.pace.high))

    async def enter(self, *, retry: bool) -> None:
        """Wait until one more request may start.

        A retry already waited its own Retry-After: only first attempts wait
        for a pause another request was told of.
        """
        await self._rate()
        while True:
            now = self.clock()
            if not retry and self.pace.paused_until > now:
                await self.pause(self.pace.paused_until - now)
                continue
            if self._in_flight >= self.pace.slots:
                self._freed.clear()
                await self._freed.wait()
                continue
            start = max(now, self._next_start)
            self._next_start = start + self.pace.spacing()
            self._in_flight += 1
            self._leaving()
            if start > now:
                await asyncio.sleep(start - now)
            return

    def leave(self, verdict: Verdict | None, latency: float) -> None:
        """A request is over: ``verdict`` None when no answer came in time."""
        self._in_flight -= 1
        self._freed.set()
        self._leaving()
        now = self.clock()
        if verdict is not None and verdict.retry_after:
            self.pace.pause(now + verdict.retry_after)
        if verdict is None or verdict.status in _OVERLOAD:
            change = self.pace.overloaded(now=now)
        elif verdict.kind == "transient":
            change = None
        else:
            change = self.pace.answered(latency=latency, now=now)
        if change is not None:
            self._leaving()
            self.log.debug(
                "import.pace_changed",
                change=change,
                limit=round(self.pace.limit, 2),
                latency=round(self.pace.latency or 0.0, 4),
            )

    def abandon(self) -> None:
        """A request ended without an answer or a failure worth learning from (a stop)."""
        self._in_flight -= 1
        self._freed.set()
        self._leaving()

    def finish(self) -> None:
        """The push is over: nothing in flight, no answers a second."""
        self._on_flight(0, self.pace.limit, 0.0)

    def now(self) -> tuple[int, float, float]:
        """Requests in flight, the limit and answers a second, as they stand."""
        return self._in_flight, self.pace.limit, self.pace.rate()

    def _leaving(self) -> None:
        self._on_flight(self._in_flight, self.pace.limit, self.pace.rate())

    async def _rate(self) -> None:
        """Wait for the next start the rate limit allows, when one is set."""
        if self.rate_limit is None:
            return
        async with self._rated:
            now = self.clock()
            wait = self._next_rated - now
            self._next_rated = max(now, self._next_rated) + 1.0 / self.rate_limit
        if wait > 0:
            await asyncio.sleep(wait)
