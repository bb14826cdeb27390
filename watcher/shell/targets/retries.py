"""Between a request's tries: how long to wait, a stop that ends the waiting, what is said.

tenacity's strategies are small callables; these are the sink's own: an
exponential backoff that honours a longer ``Retry-After`` (a failure's
``retry_after``), and a sleep that returns early when the service stops.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import tenacity

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

__all__ = ["Trouble", "WaitRetryAfter", "stoppable_sleep"]

_STOP_CHECK_EVERY = 0.2


class WaitRetryAfter(tenacity.wait.wait_base):
    """Exponential backoff with jitter, or the server's Retry-After if longer."""

    def __init__(self, backoff: tenacity.wait.wait_base) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        """The backoff's wait, or the failure's ``retry_after`` when that is longer."""
        wait = self.backoff(retry_state)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        retry_after = getattr(error, "retry_after", None)  # what the server asked for
        if isinstance(retry_after, float | int):
            return max(wait, float(retry_after))
        return wait


async def stoppable_sleep(stop: threading.Event | None, seconds: float) -> None:
    """The default sleep: ``asyncio.sleep`` that returns early when the service stops."""
    loop = asyncio.get_running_loop()  # the clock asyncio.sleep keeps
    end = loop.time() + seconds
    while stop is None or not stop.is_set():
        left = end - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(left, _STOP_CHECK_EVERY))


class Trouble:
    """Since when requests are being retried (None: they are not), and how often.

    Each row's retry is detail; the change of state is the news: an outage of
    a minute is one warning, not one per row and attempt.
    """

    def __init__(
        self, log: FilteringBoundLogger, clock: Callable[[], float], on_retry: Callable[[], None]
    ) -> None:
        self.log = log
        self.clock = clock
        self.on_retry = on_retry
        self.since: float | None = None
        self.retries = 0

    def before_sleep(self, row: int) -> Callable[[tenacity.RetryCallState], None]:
        """Tenacity's ``before_sleep`` for one row's retries."""

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.on_retry()
            error = state.outcome.exception() if state.outcome is not None else None
            reason = getattr(error, "reason", type(error).__name__)
            self.log.debug(
                "import.retry_scheduled",
                row=row,
                attempt=state.attempt_number,
                wait=round(state.upcoming_sleep, 3),
                reason=reason,
            )
            self.retries += 1
            if self.since is None:
                self.since = self.clock()
                self.log.warning("import.retrying", reason=reason)

        return before_sleep

    def answered(self) -> None:
        """An answer came: if requests were being retried, say how many, once."""
        if self.since is not None:
            self.log.info(
                "import.recovered",
                retries=self.retries,
                seconds=round(self.clock() - self.since, 3),
            )
            self.since = None
            self.retries = 0
