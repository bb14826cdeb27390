"""The import engine: one event loop for every tenant's requests, one pool per API host.

Every tenant's pushes to an API run as tasks on one event loop, in one
thread of its own (:class:`Engine`), however many tenants import at once: a
tenant's batch thread hands its push to the loop and journals the outcomes
as they come back, so the host's interpreter spends its time on requests,
not on switching between a loop per tenant. Tenants whose APIs share a
scheme, host and port share one aiohttp connection pool (keep-alive, no
limit of its own: each tenant's gate sets how many of its requests fly).

aiohttp is the client because it is the field's usual asyncio client made
for high request rates: measured here against the same loopback server,
about 0.1 ms of CPU per request where httpx's transport took 0.5 ms.

A :class:`Transport` is what a sink sends through: :class:`HttpTransport`
over a pool here, or a test's own stand-in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import os
import ssl
import threading
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

import yarl

from watcher.errors import NoAnswerError

if TYPE_CHECKING:
    from collections.abc import Coroutine, Iterator, Mapping

    import aiohttp

    from watcher.core.documents import Importing
    from watcher.shell.targets.gate import Gate

__all__ = ["STEP_THREADS", "Answer", "Engine", "HttpTransport", "Transport", "own_transport"]

_T = TypeVar("_T")
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Idle connections kept this long: under the common servers' own idle limits
# (uvicorn and Node 5 s), so the pool, not the server, closes them.
_KEEP_ALIVE = 4.0
# Threads for every tenant's batch steps (claim, validate, journal, report): a
# few per core, since steps wait on disks and databases as much as on the CPU.
STEP_THREADS = min(32, 4 * (os.cpu_count() or 2))
_CLOSE_WITHIN = 5.0


@functools.cache
def _tls() -> ssl.SSLContext:
    """The system's trusted certificates, loaded once per process (50 ms each time)."""
    return ssl.create_default_context()


class Answer(NamedTuple):
    """What the API answered: status, headers (read case-insensitively) and body."""

    status: int
    headers: Mapping[str, str]
    text: str


class Transport(Protocol):
    """Where a sink's requests go: send a JSON body, get an answer or a NoAnswerError."""

    async def post(self, url: yarl.URL, body: bytes, *, method: str = "POST") -> Answer:
        """Send ``body`` as JSON by POST (or ``method``); the answer (the caller bounds time)."""
        ...


class HttpTransport:
    """A transport over one aiohttp session (its pool shared by every sink given it)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        import aiohttp  # noqa: PLC0415 - a quarter second: only when an API is used

        self.session = session
        self._broken = (aiohttp.ClientError, OSError)

    async def post(self, url: yarl.URL, body: bytes, *, method: str = "POST") -> Answer:
        """POST ``body`` as JSON (or send it by ``method``); the whole answer, read.

        The caller bounds the time it may take.

        Raises:
            NoAnswerError: the connection could not be made, or broke.
        """
        try:
            async with self.session.request(method, url, data=body, headers=_HEADERS) as response:
                text = (await response.read()).decode("utf-8", "replace")
                return Answer(response.status, response.headers, text)
        except self._broken as exc:
            raise NoAnswerError(type(exc).__name__) from exc


def _session() -> aiohttp.ClientSession:
    """A lean session: no cookies, no decompression, one pool with no limit of its own."""
    import aiohttp  # noqa: PLC0415 - a quarter second: only when an API is used

    connector = aiohttp.TCPConnector(
        limit=0, ssl=_tls(), keepalive_timeout=_KEEP_ALIVE, enable_cleanup_closed=False
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),  # each sink bounds its own requests
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
    )


class own_transport:  # noqa: N801 - used as a context manager, like open()
    """A transport with a session of its own, for a push run outside the engine."""

    async def __aenter__(self) -> HttpTransport:
        self._session = _session()
        return HttpTransport(self._session)

    async def __aexit__(self, *_: object) -> None:
        await self._session.close()


class Engine:
    """One event loop in a thread of its own, and a pool per API origin, for a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sessions: dict[tuple[str, str, int | None], aiohttp.ClientSession] = {}
        self._gates: dict[str, Gate] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def pool(self) -> concurrent.futures.Executor:
        """The few threads every tenant's batch steps take turns on (started when first used)."""
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=STEP_THREADS, thread_name_prefix="steps"
                )
            return self._pool

    def submit(self, coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Run ``coroutine`` on the loop with the caller's context (its log bindings)."""
        loop = self._running()
        context = contextvars.copy_context()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def start() -> None:
            task = loop.create_task(coroutine, context=context)

            def done(finished: asyncio.Task[_T]) -> None:
                if finished.cancelled():
                    future.cancel()
                elif (error := finished.exception()) is not None:
                    future.set_exception(error)
                else:
                    future.set_result(finished.result())

            task.add_done_callback(done)

        loop.call_soon_threadsafe(start)
        return future

    def transport(self, url: str) -> HttpTransport:
        """The transport to ``url``'s origin, its pool shared with every tenant of that origin."""
        parsed = yarl.URL(url)
        key = (parsed.scheme, parsed.host or "", parsed.port)
        with self._lock:
            session = self._sessions.get(key)
        if session is None:
            made = asyncio.run_coroutine_threadsafe(_made(), self._running()).result()
            with self._lock:
                session = self._sessions.setdefault(key, made)
            if session is not made:
                asyncio.run_coroutine_threadsafe(made.close(), self._running()).result()
        return HttpTransport(session)

    @contextlib.contextmanager
    def importing(self, tenant: str, gate: Gate) -> Iterator[None]:
        """While a tenant's push runs: its gate, for :meth:`pushes` to read."""
        with self._lock:
            self._gates[tenant] = gate
        try:
            yield
        finally:
            with self._lock:
                if self._gates.get(tenant) is gate:
                    del self._gates[tenant]

    def pushes(self) -> dict[str, Importing]:
        """Each tenant importing now: requests in flight, the limit, answers a second."""
        with self._lock:
            gates = dict(self._gates)
        found: dict[str, Importing] = {}
        for tenant, gate in gates.items():
            in_flight, limit, rate = gate.now()
            found[tenant] = {"in_flight": in_flight, "limit": round(limit, 1), "rate": rate}
        return found

    def close(self) -> None:
        """Close every pool and end the loop's thread (tasks still running are cancelled)."""
        with self._lock:
            loop, thread, sessions = self._loop, self._thread, list(self._sessions.values())
            self._loop, self._thread, self._sessions = None, None, {}
            pool, self._pool = self._pool, None
        if loop is not None and thread is not None:
            self._end(loop, thread, sessions)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _end(
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        sessions: list[aiohttp.ClientSession],
    ) -> None:
        """Close the pools, cancel what still runs, stop the loop and wait for its thread."""

        async def wind_down() -> None:
            for session in sessions:
                await session.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(TimeoutError, RuntimeError):  # the loop ends all the same
            asyncio.run_coroutine_threadsafe(wind_down(), loop).result(_CLOSE_WITHIN)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CLOSE_WITHIN)

    def _running(self) -> asyncio.AbstractEventLoop:
        """The loop, started on first use."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(
                    target=_serve, args=(loop, started), name="imports", daemon=True
                )
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop


async def _made() -> aiohttp.ClientSession:
    return _session()


def _serve(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    try:
        loop.run_forever()
    finally:
        loop.close()
