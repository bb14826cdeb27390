"""Importing users through the User Import API: one JSON POST per user.

The Push API takes one user per request, upserted by ``unique_id``, with the
``apiToken`` in the body. Requests run concurrently up to the tenant's limit,
paced by an optional rate limit. Network errors, timeouts, 408, 429 and 5xx
are retried with exponential backoff and jitter (a ``Retry-After`` is
honoured), up to a number of attempts and a total time; if a request still
fails the API is taken as unavailable and the batch stops with its rows
pending. 401 and 403 mean the token is wrong: the batch stops at once, rows
stay pending, nobody is told their users failed. Any other 4xx, and a 2xx
whose body says it failed, refuses that one user with the API's own message
(:mod:`watcher.core.responses` reads each answer).

A row whose outcome was not yet journaled when the service died is sent again
on restart; the API's upsert by ``unique_id`` makes that the same effect.

The same sink deactivates a full snapshot's missing users: to another URL
(whose ``{field}`` placeholders take each user's values) and by another
method when the tenant says so; a DELETE answered 404 or 410 finds the
user already gone, which is what it asked for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import string
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import tenacity
import yarl

from watcher.core.codes import Code
from watcher.core.responses import Verdict, classify
from watcher.errors import NoAnswerError, SecretUnavailableError, SinkUnavailableError
from watcher.shell.targets.engine import own_transport
from watcher.shell.targets.gate import Gate
from watcher.shell.targets.retries import Trouble, WaitRetryAfter, stoppable_sleep
from watcher.shell.targets.sinks import Outcome

if TYPE_CHECKING:
    import threading
    from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping

    from structlog.typing import FilteringBoundLogger

    from watcher.config import ApiConfig
    from watcher.shell.targets.engine import Transport

__all__ = ["ApiSink"]

# A deletion the API answers with these finds nothing to delete: done.
_GONE = frozenset({404, 410})


class _TransientError(Exception):
    """A failure worth retrying, with any Retry-After the server gave."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _StoppingError(Exception):
    """The service was asked to stop during a wait between retries."""


class ApiSink:
    """Pushes users to one tenant's User Import API endpoint."""

    kind = "api"

    def __init__(
        self,
        config: ApiConfig,
        *,
        log: FilteringBoundLogger,
        transport: Transport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
        backoff: tenacity.wait.wait_base | None = None,
        on_answer: Callable[[int | None], None] | None = None,
        on_retry: Callable[[], None] | None = None,
        on_flight: Callable[[int, float, float], None] | None = None,
        url: str | None = None,
        method: str = "POST",
    ) -> None:
        """Push to ``config.url`` by POST, or to ``url`` (``{field}`` filled in) by ``method``."""
        self.config = config
        self.method = method
        self.log = log
        self.transport = transport
        self.sleep = sleep or functools.partial(stoppable_sleep, stop)
        self.clock = clock
        # A Retry-After may be an HTTP date: read against the wall clock.
        self._now = lambda: dt.datetime.fromtimestamp(wall_clock(), dt.UTC)
        self.stop = stop
        self.backoff = backoff or tenacity.wait_exponential_jitter(initial=1, max=30, jitter=1)
        address = url or config.url
        self._url = yarl.URL(address)  # parsed once, not per request
        # A URL naming a field ("/users/{unique_id}") is made per row.
        self._pieces = (
            [(text, name) for text, name, _, _ in string.Formatter().parse(address)]
            if "{" in address
            else None
        )
        # Told each answer's status (None: no answer in time) and each retry: the metrics.
        self.on_answer = on_answer or (lambda _: None)
        self.on_retry = on_retry or (lambda: None)
        self.trouble = Trouble(log, clock, self.on_retry)
        self.gate = Gate(
            max_concurrency=config.max_concurrency,
            rate_limit=config.rate_limit,
            clock=clock,
            pause=self._sleep_unless_stopped,
            log=log,
            on_flight=on_flight,
        )

    async def push(
        self,
        rows: Iterable[Mapping[str, str | int | None]],
        report: Callable[[Outcome], None],
        *,
        room: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Send every row, as many at a time as the API takes; see the module docstring.

        ``room``, when given, is awaited before each row is sent: whoever records
        the outcomes holds the push back while it is behind.
        """
        try:
            token = self.config.token.reveal()
        except SecretUnavailableError as exc:
            self.log.error("import.token_unavailable", detail=str(exc))
            raise SinkUnavailableError("auth", "the API token is unavailable") from exc
        source = iter(rows)
        halted: list[SinkUnavailableError] = []
        try:
            if self.transport is not None:  # the engine's pool, or a test's stand-in
                await self._workers(self.transport, token, source, (report, room), halted)
            else:
                async with own_transport() as transport:
                    await self._workers(transport, token, source, (report, room), halted)
        finally:
            self.gate.finish()
        if halted:
            # One event per stop, however many workers saw the failure.
            if halted[0].reason == "auth":
                self.log.critical("import.auth_failed", detail=halted[0].detail)
            elif not self._stopping():
                self.log.error(
                    "import.api_unavailable", reason=halted[0].detail, retries=self.trouble.retries
                )
            raise halted[0]
        if self.stop is not None and self.stop.is_set():
            raise SinkUnavailableError("unavailable", "the service is stopping")

    async def _workers(
        self,
        transport: Transport,
        token: str,
        source: Iterator[Mapping[str, str | int | None]],
        told: tuple[Callable[[Outcome], None], Callable[[], Awaitable[None]] | None],
        halted: list[SinkUnavailableError],
    ) -> None:
        """As many workers as the most requests in flight, each sending row after row."""
        report, room = told

        async def worker() -> None:
            for row in source:
                if room is not None:
                    await room()
                if halted or self._stopping():
                    return
                try:
                    report(await self.send(transport, token, row))
                except SinkUnavailableError as exc:
                    halted.append(exc)
                    return

        await asyncio.gather(*(worker() for _ in range(self.config.max_concurrency)))

    async def send(
        self, client: Transport, token: str, row: Mapping[str, str | int | None]
    ) -> Outcome:
        """Send one user, retrying what is transient; its outcome."""
        number = int(row["row"] or 0)
        document: dict[str, Any] = {"apiToken": token}
        document.update((k, v) for k, v in row.items() if k != "row" and v is not None)
        body = json.dumps(document, ensure_ascii=False).encode()
        url = self._url if self._pieces is None else _filled(self._pieces, row)
        try:
            # Most requests succeed at once; the retry machinery starts only
            # when one does not.
            verdict = await self._attempt(client, url, body)
        except _TransientError as first:
            verdict = await self._retry(client, url, body, number, first)
        self.trouble.answered()
        if verdict.kind == "auth":
            said = (verdict.message or "").replace(token, "[token]")
            raise SinkUnavailableError("auth", f"the API answered {verdict.status}: {said}")
        if verdict.kind == "rejected" and self.method == "DELETE" and verdict.status in _GONE:
            return Outcome(row=number, imported=True)
        if verdict.kind == "rejected":
            self.log.info("import.rejected", row=number, status=verdict.status)
            return Outcome(
                row=number, imported=False, code=Code.API_REJECTED.value, message=verdict.message
            )
        return Outcome(row=number, imported=True)

    async def _retry(
        self,
        client: Transport,
        url: yarl.URL,
        body: bytes,
        number: int,
        first: _TransientError,
    ) -> Verdict:
        """Retry a request whose first attempt failed transiently."""
        # Before, not after, the delay: a wait (a Retry-After of an hour, say)
        # that would end past the budget ends the retries now; the rows stay
        # pending and the batch is retried later.
        stop = tenacity.stop_after_attempt(self.config.max_attempts) | tenacity.stop_before_delay(
            self.config.max_retry_time
        )
        if self.stop is not None:
            stop = stop | tenacity.stop_when_event_set(self.stop)
        retrying = tenacity.AsyncRetrying(
            stop=stop,
            wait=WaitRetryAfter(self.backoff),
            retry=tenacity.retry_if_exception_type(_TransientError),
            sleep=self._sleep_unless_stopped,
            before_sleep=self.trouble.before_sleep(number),
            reraise=True,
        )
        failures = [first]

        async def attempt() -> Verdict:
            # Attempt one already happened: tenacity's first call re-raises it,
            # so its stop, wait and logging count it like any other.
            if failures:
                raise failures.pop()
            return await self._attempt(client, url, body, retry=True)

        try:
            return await retrying(attempt)
        except _TransientError as exc:
            raise SinkUnavailableError("unavailable", exc.reason) from exc
        except _StoppingError as exc:
            raise SinkUnavailableError("unavailable", "the service is stopping") from exc

    def _stopping(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        """Wait between retries; a stop, before or during the wait, ends the retries."""
        if self._stopping():
            raise _StoppingError
        await self.sleep(seconds)
        if self._stopping():
            raise _StoppingError

    def concurrency(self) -> tuple[int, int]:
        """The lowest and highest number of requests the limit let in flight at once."""
        return self.gate.concurrency()

    async def _attempt(
        self, client: Transport, url: yarl.URL, body: bytes, *, retry: bool = False
    ) -> Verdict:
        try:
            await self.gate.enter(retry=retry)
        except _StoppingError as exc:
            raise SinkUnavailableError("unavailable", "the service is stopping") from exc
        started = self.clock()
        try:
            # The transport bounds the whole exchange; so does this, whatever
            # the transport: a server that drips a byte a second ends in time.
            async with asyncio.timeout(self.config.timeout):
                answer = await client.post(url, body, method=self.method)
        except NoAnswerError as exc:
            self.gate.leave(None, 0.0)
            self.on_answer(None)
            raise _TransientError(exc.reason) from exc
        except TimeoutError as exc:
            self.gate.leave(None, 0.0)
            self.on_answer(None)
            raise _TransientError("ResponseTooSlow") from exc
        except BaseException:
            self.gate.abandon()
            raise
        verdict = classify(answer.status, answer.headers, answer.text, self._now)
        self.gate.leave(verdict, self.clock() - started)
        self.on_answer(answer.status)
        if verdict.kind == "transient":
            raise _TransientError(f"HTTP {verdict.status}", verdict.retry_after)
        return verdict


def _filled(pieces: list[tuple[str, str | None]], row: Mapping[str, str | int | None]) -> yarl.URL:
    """A URL's pieces with each placeholder replaced by the row's value, percent-encoded."""
    parts = []
    for text, name in pieces:
        parts.append(text)
        if name is not None:
            parts.append(urllib.parse.quote(str(row.get(name) or ""), safe=""))
    return yarl.URL("".join(parts), encoded=True)
