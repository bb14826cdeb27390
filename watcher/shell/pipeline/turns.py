"""A tenant's batches taken in turns: their steps on a few threads, their pushes on one loop.

A batch's steps are plain code that reads and writes the journal, validates
with polars, writes reports; its push to the API waits on the network. So a
tenant's run is a generator of :class:`Pushing`: it runs its steps until a
push, yields the push, and is given back its outcome (nothing, or the
:class:`~watcher.errors.SinkUnavailableError` that stopped it) to go on.

Two drivers take such a run:

- :func:`here` on the calling thread (``watcher process``, ``watcher run
  --once``): each push on the engine, waited for here, its outcomes recorded
  as they come;
- :func:`on_the_loop` as a task of the engine's loop (the service): each turn
  of steps on a thread of a small shared pool, each push a task beside every
  other tenant's, its outcomes recorded in turns on the pool. A tenant whose
  API is slow or hanging holds no thread while it waits; two hundred tenants
  importing at once are two hundred tasks and a pool of a few threads.

A run's turns follow one another, never overlap, so the run may keep one
journal connection (opened to be used from any thread) across them. Its log
bindings go with it from turn to turn.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import dataclasses
import queue
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from watcher.errors import SinkUnavailableError
from watcher.shell import faults

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watcher.shell.targets.api import ApiSink
    from watcher.shell.targets.engine import Engine
    from watcher.shell.targets.sinks import Outcome

__all__ = ["MOST_UNRECORDED", "Pushing", "Turns", "first_answer", "here", "on_the_loop"]

_T = TypeVar("_T")
_LOOK_EVERY = 0.1  # seconds between looks at a push's outcomes, to record them
MOST_UNRECORDED = 500  # answers waiting to be recorded before a push waits for the journal


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Pushing:
    """A run waiting for a push: the sink and its rows, and how each outcome is recorded."""

    engine: Engine
    tenant: str
    sink: ApiSink
    payloads: Iterator[dict[str, Any]]
    record: Callable[[Outcome], None]  # journals one outcome: on the run's own turn only


# A tenant's run: yields each push it waits for, gets back its outcome, returns its result.
Turns = Generator[Pushing, None, _T]


def here(turns: Generator[Pushing, None, _T]) -> _T:
    """Take every turn on this thread; wait for each push here."""
    error: Exception | None = None
    while not isinstance(step := _advance(turns, error), _Finished):
        error = _wait_here(step)
    return step.value


def _wait_here(pushing: Pushing) -> Exception | None:
    """Push on the engine; record the outcomes on this thread as they come; what stopped it."""
    outcomes: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
    with pushing.engine.importing(pushing.tenant, pushing.sink.gate):
        pushed = pushing.engine.submit(
            pushing.sink.push(pushing.payloads, first_answer(outcomes.put))
        )
        while True:
            try:
                pushing.record(outcomes.get(timeout=_LOOK_EVERY))
            except queue.Empty:
                if pushed.done():
                    break
        while not outcomes.empty():  # every outcome is put before the push is done
            pushing.record(outcomes.get_nowait())
        try:
            pushed.result()
        except concurrent.futures.CancelledError:  # the engine closed under it
            return SinkUnavailableError("unavailable", "the service is stopping")
        except Exception as exc:  # noqa: BLE001 - thrown into the run, where it waited
            return exc
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class _Finished(Generic[_T]):
    value: _T


def _advance(
    turns: Generator[Pushing, None, _T], error: Exception | None
) -> Pushing | _Finished[_T]:
    """One turn of steps, up to the next push or the end (a future cannot hold StopIteration)."""
    try:
        return turns.send(None) if error is None else turns.throw(error)
    except StopIteration as done:
        return _Finished(done.value)


async def on_the_loop(turns: Generator[Pushing, None, _T], pool: concurrent.futures.Executor) -> _T:
    """Take every turn of steps on ``pool``, every push on this loop; the run's result."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()  # the run's log bindings, from turn to turn
    error: Exception | None = None
    try:
        while True:
            step = await loop.run_in_executor(pool, context.run, _advance, turns, error)
            if isinstance(step, _Finished):
                return step.value
            try:
                error = await _push(step, loop, pool, context)
            except Exception as exc:  # noqa: BLE001 - recording failed: thrown into the run
                error = exc
    except asyncio.CancelledError:
        # The engine is closing: the run's finally blocks record and close (unless
        # a turn is still running on the pool, which then ends the run itself).
        with contextlib.suppress(ValueError):
            turns.close()
        raise


async def _push(
    pushing: Pushing,
    loop: asyncio.AbstractEventLoop,
    pool: concurrent.futures.Executor,
    context: contextvars.Context,
) -> Exception | None:
    """The push as a task of this loop; its outcomes recorded on ``pool`` while it runs."""
    arrived: list[Outcome] = []
    recorded = asyncio.Event()

    async def record() -> None:
        while arrived:
            chunk = arrived[:]
            arrived.clear()
            await loop.run_in_executor(pool, context.run, _record_all, pushing.record, chunk)
            recorded.set()

    async def room() -> None:
        # Answers come faster than the journal takes them (a loaded host): the
        # push waits, so a crash never has more than this to send again.
        while len(arrived) >= MOST_UNRECORDED:
            recorded.clear()
            await recorded.wait()

    with pushing.engine.importing(pushing.tenant, pushing.sink.gate):
        # A copy: the task runs while turns of recording use the run's own context.
        task = loop.create_task(
            pushing.sink.push(pushing.payloads, first_answer(arrived.append), room=room),
            context=context.copy(),
        )
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=_LOOK_EVERY)
                await record()
            await record()
        except BaseException:
            task.cancel()  # nobody would record its outcomes: it ends with the run
            raise
    error = task.exception()
    if error is None or isinstance(error, Exception):
        return error
    raise error  # not a fault of the push (an interrupt): nothing to hand back


def first_answer(put: Callable[[Outcome], None]) -> Callable[[Outcome], None]:
    """``put``, after a crash point at the first answer (an answer in, not yet journaled)."""
    first = [True]

    def arrived(outcome: Outcome) -> None:
        if first[0]:
            first[0] = False
            faults.checkpoint("answered")
        put(outcome)

    return arrived


def _record_all(record: Callable[[Outcome], None], outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        record(outcome)
