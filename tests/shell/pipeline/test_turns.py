"""A run taken in turns: steps where the driver says, pushes on the engine, outcomes handed back."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from tests.support.fakeapi import FakeApi, reply
from watcher.config import ApiConfig, Secret
from watcher.errors import SinkUnavailableError
from watcher.shell import logs
from watcher.shell.pipeline.turns import MOST_UNRECORDED, Pushing, here, on_the_loop
from watcher.shell.targets.api import ApiSink
from watcher.shell.targets.engine import Answer, Engine

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watcher.shell.pipeline.turns import Turns
    from watcher.shell.targets.sinks import Outcome


@pytest.fixture
def engine() -> Iterator[Engine]:
    """An engine (a loop in a thread, a pool), closed at the end."""
    made = Engine()
    yield made
    made.close()


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sinks' token."""
    monkeypatch.setenv("TURNS_TOKEN", "tok")


def sink(answer: Callable[[dict[str, Any]], Answer], *, attempts: int = 1) -> ApiSink:
    """A sink to a stand-in API, retrying nothing unless asked."""
    return ApiSink(
        ApiConfig(
            url="https://api.example/push",
            token=Secret(env="TURNS_TOKEN"),
            max_concurrency=4,
            max_attempts=attempts,
            max_retry_time=1.0,
        ),
        log=structlog.get_logger(),
        transport=FakeApi(answer),
    )


def rows(n: int) -> Iterator[dict[str, Any]]:
    """API rows, numbered from 2."""
    return iter([{"row": i + 2, "unique_id": f"U{i}"} for i in range(n)])


def run(engine: Engine, api: ApiSink, n: int, seen: dict[str, Any]) -> Turns[str]:
    """A run with a step, a push of ``n`` rows, a step: where each ran, what it got back."""
    seen["steps"] = [threading.current_thread().name]
    logs.bind(tenant="jcu")  # a step's binding, for the later turns
    recorded: list[tuple[Outcome, str]] = []
    seen["recorded"] = recorded

    def record(outcome: Outcome) -> None:
        recorded.append((outcome, threading.current_thread().name))

    try:
        yield Pushing(engine=engine, tenant="jcu", sink=api, payloads=rows(n), record=record)
    except SinkUnavailableError as exc:
        return f"stopped: {exc.reason}"
    except ValueError as exc:
        return f"fault: {exc}"
    finally:
        seen["steps"].append(threading.current_thread().name)
        seen["bound"] = structlog.contextvars.get_contextvars().get("tenant")
        logs.unbind("tenant")
    return "done"


def test_here_every_step_and_every_record_is_on_the_calling_thread(engine: Engine) -> None:
    """``watcher process``: the journal's thread records; the push ran on the engine."""
    seen: dict[str, Any] = {}
    assert here(run(engine, sink(lambda _: reply(200)), 30, seen)) == "done"
    me = threading.current_thread().name
    assert seen["steps"] == [me, me]
    assert sorted(o.row for o, _ in seen["recorded"]) == list(range(2, 32))
    assert {where for _, where in seen["recorded"]} == {me}


def test_on_the_loop_steps_and_records_take_the_pool_and_bindings_go_along(
    engine: Engine,
) -> None:
    """The service: no turn on the loop's thread; the run's log bindings survive its turns."""
    seen: dict[str, Any] = {}
    done = engine.submit(
        on_the_loop(run(engine, sink(lambda _: reply(200)), 30, seen), engine.pool)
    ).result(30)
    assert done == "done"
    assert all(name.startswith("steps") for name in seen["steps"])
    assert all(where.startswith("steps") for _, where in seen["recorded"])
    assert len(seen["recorded"]) == 30
    assert seen["bound"] == "jcu"


@pytest.mark.parametrize("driver", ["here", "on_the_loop"])
def test_what_ends_a_push_is_thrown_into_the_run_where_it_waited(
    engine: Engine, driver: str
) -> None:
    """A refused token stops it; a fault in the sink is the run's to handle; nothing is lost."""

    def drive(turns: Turns[str]) -> str:
        if driver == "here":
            return here(turns)
        return engine.submit(on_the_loop(turns, engine.pool)).result(30)

    refused = sink(lambda _: reply(401, {"error": "bad token"}))
    assert drive(run(engine, refused, 5, {})) == "stopped: auth"

    def broken(_: dict[str, Any]) -> Answer:
        raise ValueError("a bug in the transport")

    assert drive(run(engine, sink(broken), 5, {})) == "fault: a bug in the transport"


def test_a_closed_engine_ends_a_waiting_run_through_its_own_finally(engine: Engine) -> None:
    """Stopped mid-push (the process winding down): the run's finally blocks still run."""
    seen: dict[str, Any] = {}
    started = threading.Event()

    class Hanging:
        async def post(self, _url: object, _body: bytes, *, method: str = "POST") -> Answer:  # noqa: ARG002 - every request is the same here
            started.set()
            await asyncio.sleep(3600)
            return reply(200)

    api = sink(lambda _: reply(200))
    api.transport = Hanging()
    running = engine.submit(on_the_loop(run(engine, api, 1, seen), engine.pool))
    assert started.wait(10)
    engine.close()
    with pytest.raises(concurrent.futures.CancelledError):
        running.result(10)
    assert len(seen["steps"]) == 2  # the finally ran


def test_a_push_waits_while_its_answers_wait_for_the_journal(engine: Engine) -> None:
    """Answers faster than they are recorded: the push is held back, the gap stays bounded."""
    api = FakeApi(lambda _: reply(200))
    quick = sink(lambda _: reply(200))
    quick.transport = api
    recorded: list[int] = []
    widest = [0]

    def record(outcome: Outcome) -> None:
        time.sleep(0.0003)  # a journal slower than the API
        recorded.append(outcome.row)
        widest[0] = max(widest[0], len(api.seen) - len(recorded))

    def slow_run() -> Turns[None]:
        yield Pushing(engine=engine, tenant="jcu", sink=quick, payloads=rows(3000), record=record)

    engine.submit(on_the_loop(slow_run(), engine.pool)).result(60)
    assert len(recorded) == 3000
    assert widest[0] <= MOST_UNRECORDED + 2 * 4  # the push's 4 workers, each a row ahead
