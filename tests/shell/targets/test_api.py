"""The API sink: response classification, and pushing to a real HTTP server."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import structlog
import tenacity
from structlog.testing import capture_logs

from tests.support.apiserver import ApiServer, Reply
from tests.support.fakeapi import FakeApi, reply
from watcher.config import ApiConfig, Secret
from watcher.core.responses import Verdict, classify, retry_after
from watcher.errors import NoAnswerError, SinkUnavailableError
from watcher.shell.targets.api import ApiSink
from watcher.shell.targets.sinks import Outcome

if TYPE_CHECKING:
    from collections.abc import Iterator

    from watcher.shell.targets.engine import Answer

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "body", "headers", "verdict"),
    [
        (200, '{"success": true}', {}, Verdict(kind="imported", status=200)),
        (201, "created", {}, Verdict(kind="imported", status=201)),
        (200, '{"errors": []}', {}, Verdict(kind="imported", status=200)),
        (
            200,
            '{"success": false, "message": "user_type_id 99 does not exist"}',
            {},
            Verdict(kind="rejected", status=200, message="user_type_id 99 does not exist"),
        ),
        (
            200,
            '{"error": "Email is invalid"}',
            {},
            Verdict(kind="rejected", status=200, message="Email is invalid"),
        ),
        (
            200,
            '{"errors": {"email": "taken", "zip": "bad"}}',
            {},
            Verdict(kind="rejected", status=200, message="email: taken; zip: bad"),
        ),
        (
            422,
            '{"errors": ["first_name too long", "bad date"]}',
            {},
            Verdict(kind="rejected", status=422, message="first_name too long; bad date"),
        ),
        (400, "  Bad\n request  ", {}, Verdict(kind="rejected", status=400, message="Bad request")),
        (
            404,
            "",
            {},
            Verdict(
                kind="rejected", status=404, message="The API refused this user without saying why."
            ),
        ),
        (401, '{"error": "bad token"}', {}, Verdict(kind="auth", status=401, message="bad token")),
        (
            403,
            "",
            {},
            Verdict(
                kind="auth", status=403, message="The API refused this user without saying why."
            ),
        ),
        (429, "", {"retry-after": "7"}, Verdict(kind="transient", status=429, retry_after=7.0)),
        (
            503,
            "",
            {"retry-after": "Sun, 22 Nov 2026 12:00:30 GMT"},
            Verdict(kind="transient", status=503, retry_after=30.0),
        ),
        (500, "", {}, Verdict(kind="transient", status=500)),
        (408, "", {}, Verdict(kind="transient", status=408)),
    ],
)
def test_responses_are_classified(
    status: int, body: str, headers: dict[str, str], verdict: Verdict
) -> None:
    """Each response becomes imported, rejected, transient or an auth failure."""
    assert classify(status, headers, body, lambda: NOW) == verdict


def test_long_api_messages_are_cut() -> None:
    """A refusal message is kept to one short line."""
    verdict = classify(400, {}, "x" * 1000, lambda: NOW)
    assert verdict.message is not None
    assert len(verdict.message) == 300


def test_retry_after_ignores_garbage() -> None:
    """An unreadable Retry-After is no instruction."""
    assert retry_after("soon", lambda: NOW) is None
    assert retry_after("Sun, 22 Nov 2026 11:00:00 GMT", lambda: NOW) == 0.0


def config(url: str, **overrides: Any) -> ApiConfig:
    """An API configuration with a token from the environment."""
    values: dict[str, Any] = {
        "url": url,
        "token": Secret(env="WATCHER_TEST_TOKEN"),
        "max_concurrency": 4,
        "timeout": 2.0,
        "max_attempts": 4,
        "max_retry_time": 30.0,
    }
    values.update(overrides)
    return ApiConfig(**values)


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sink here uses the token 'tok-123'."""
    monkeypatch.setenv("WATCHER_TEST_TOKEN", "tok-123")


def users(n: int) -> list[dict[str, str | int | None]]:
    """N rows as validation hands them over."""
    return [
        {"row": i + 2, "unique_id": f"U{i}", "email": f"u{i}@x.org", "city": None} for i in range(n)
    ]


def push(sink: ApiSink, rows: list[dict[str, str | int | None]]) -> list[Outcome]:
    """Run the sink and collect outcomes, sorted by row."""
    outcomes: list[Outcome] = []
    asyncio.run(sink.push(rows, outcomes.append))
    return sorted(outcomes, key=lambda o: o.row)


def quick_sink(cfg: ApiConfig, waits: list[float] | None = None, **kwargs: Any) -> ApiSink:
    """A sink whose backoff sleeps are recorded, not waited (for MockTransport tests)."""
    recorded = waits if waits is not None else []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    return ApiSink(cfg, log=structlog.get_logger(), sleep=sleep, **kwargs)


def test_each_user_is_one_json_post_with_the_token() -> None:
    """The body holds apiToken and the API attributes; empty ones are left out."""
    api = FakeApi(lambda _: reply(200, {"success": True}))
    sink = quick_sink(config("https://api.example/push"), transport=api)
    assert push(sink, users(2)) == [Outcome(row=2, imported=True), Outcome(row=3, imported=True)]
    assert {url for url, _ in api.seen} == {"https://api.example/push"}
    documents = sorted((d for _, d in api.seen), key=lambda d: str(d["unique_id"]))
    assert documents[0]["apiToken"] == "tok-123"
    assert documents[0]["unique_id"] == "U0"
    assert "row" not in documents[0]
    assert "city" not in documents[0]


def test_transient_failures_back_off_and_honour_retry_after() -> None:
    """503, 429 with Retry-After and a dropped connection are retried, then succeed."""
    script: Iterator[Answer | Exception] = iter(
        [
            reply(503),
            reply(429, headers={"Retry-After": "12"}),
            NoAnswerError("ClientConnectorError"),
            reply(200, {"success": True}),
        ]
    )

    def handler(_: object) -> Answer:
        step = next(script)
        if isinstance(step, Exception):
            raise step
        return step

    waits: list[float] = []
    sink = quick_sink(
        config("https://api.example/push", max_concurrency=1),
        waits,
        transport=FakeApi(handler),
        backoff=tenacity.wait_exponential(multiplier=1, max=30),
    )
    with capture_logs() as logs:
        assert push(sink, users(1)) == [Outcome(row=2, imported=True)]
    assert waits == [1.0, 12.0, 4.0]
    retries = [e for e in logs if e["event"] == "import.retry_scheduled"]
    assert [(e["log_level"], e["attempt"], e["reason"]) for e in retries] == [
        ("debug", 1, "HTTP 503"),
        ("debug", 2, "HTTP 429"),
        ("debug", 3, "ClientConnectorError"),
    ]
    # The outage itself, said once as it begins and once as it ends.
    said = [e for e in logs if e["event"] in ("import.retrying", "import.recovered")]
    assert [(e["event"], e["log_level"]) for e in said] == [
        ("import.retrying", "warning"),
        ("import.recovered", "info"),
    ]
    assert (said[0]["reason"], said[1]["retries"]) == ("HTTP 503", 3)


def test_an_api_that_stays_down_stops_the_push() -> None:
    """After the last attempt the sink is unavailable; nothing is reported failed."""
    sink = quick_sink(
        config("https://api.example/push", max_concurrency=2, max_attempts=3),
        transport=FakeApi(lambda _: reply(502)),
    )
    outcomes: list[Outcome] = []
    with pytest.raises(SinkUnavailableError) as caught:
        asyncio.run(sink.push(users(5), outcomes.append))
    assert (caught.value.reason, outcomes) == ("unavailable", [])


def test_a_refused_token_stops_at_once() -> None:
    """401 is an operator's problem: no retry, no row reported failed."""
    calls = [0]

    def handler(_: object) -> Answer:
        calls[0] += 1
        return reply(401, {"error": "invalid token"})

    sink = quick_sink(
        config("https://api.example/push", max_concurrency=1),
        transport=FakeApi(handler),
    )
    outcomes: list[Outcome] = []
    with pytest.raises(SinkUnavailableError) as caught:
        asyncio.run(sink.push(users(5), outcomes.append))
    assert (caught.value.reason, calls[0], outcomes) == ("auth", 1, [])


def test_a_refused_token_is_logged_with_the_apis_words_and_the_token_masked() -> None:
    """import.auth_failed carries the API's message; a token it echoes is masked."""
    sink = quick_sink(
        config("https://api.example/push", max_concurrency=1),
        transport=FakeApi(lambda _: reply(403, {"error": "token tok-123 has expired"})),
    )
    with capture_logs() as logs, pytest.raises(SinkUnavailableError):
        asyncio.run(sink.push(users(1), lambda _: None))
    (event,) = [e for e in logs if e["event"] == "import.auth_failed"]
    assert event["detail"] == "the API answered 403: token [token] has expired"


def test_a_missing_token_is_an_auth_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a token nothing is sent."""
    monkeypatch.delenv("WATCHER_TEST_TOKEN")
    sink = quick_sink(
        config("https://api.example/push"),
        transport=FakeApi(lambda _: reply(200)),
    )
    with pytest.raises(SinkUnavailableError, match="auth"):
        push(sink, users(1))


def test_a_stop_request_ends_the_backoff() -> None:
    """A service asked to stop gives up waiting and keeps rows pending."""
    stop = threading.Event()
    stop.set()
    sink = quick_sink(
        config("https://api.example/push"),
        transport=FakeApi(lambda _: reply(503)),
        stop=stop,
    )
    with pytest.raises(SinkUnavailableError):
        push(sink, users(3))


@pytest.mark.integration
def test_against_a_real_server_every_kind_of_answer() -> None:
    """Over real HTTP: success, error bodies, 4xx messages, slow answers and retries."""

    def respond(body: dict[str, Any], count: int) -> Reply:
        match body["unique_id"]:
            case "ok":
                return Reply()
            case "error-body":
                return Reply(body={"success": False, "message": "user_type_id 9 unknown"})
            case "bad":
                return Reply(status=422, body={"errors": ["email already used"]})
            case "flaky":
                return Reply(status=503) if count == 1 else Reply()
            case "limited":
                return Reply(status=429, headers={"Retry-After": "1"}) if count == 1 else Reply()
            case "slow-once":
                return Reply(delay=1.5) if count == 1 else Reply()
            case _:
                return Reply(status=500)

    rows = [
        {"row": i + 2, "unique_id": u}
        for i, u in enumerate(["ok", "error-body", "bad", "flaky", "limited", "slow-once"])
    ]
    with ApiServer(respond) as server:
        sink = ApiSink(
            config(server.url, timeout=0.5, max_attempts=3),
            log=structlog.get_logger(),
            backoff=tenacity.wait_fixed(0.05),
        )
        started = time.monotonic()
        outcomes = push(sink, rows)  # type: ignore[arg-type]
    assert outcomes == [
        Outcome(row=2, imported=True),
        Outcome(row=3, imported=False, code="api_rejected", message="user_type_id 9 unknown"),
        Outcome(row=4, imported=False, code="api_rejected", message="email already used"),
        Outcome(row=5, imported=True),
        Outcome(row=6, imported=True),
        Outcome(row=7, imported=True),
    ]
    assert time.monotonic() - started >= 1.0  # the Retry-After second was waited
    assert server.ids().count("slow-once") == 2  # the timed-out request was sent again


@pytest.mark.integration
def test_concurrency_is_bounded_and_the_rate_limit_paced() -> None:
    """No more than `concurrency` requests are in flight; the rate limit spaces them."""
    in_flight = [0]
    peak = [0]
    lock = threading.Lock()

    def respond(_: dict[str, Any], __: int) -> Reply:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.05)
        with lock:
            in_flight[0] -= 1
        return Reply()

    with ApiServer(respond) as server:
        sink = ApiSink(config(server.url, max_concurrency=3), log=structlog.get_logger())
        assert len(push(sink, users(30))) == 30
        assert peak[0] == 3
        paced = ApiSink(
            config(server.url, max_concurrency=8, rate_limit=20), log=structlog.get_logger()
        )
        started = time.monotonic()
        push(paced, users(10))
        assert time.monotonic() - started >= 0.45  # 10 requests at 20 per second


@pytest.mark.integration
def test_a_retry_after_beyond_the_retry_budget_ends_the_push_at_once() -> None:
    """Retry-After: 3600 with a 5 s budget: no hour-long wait, the rows stay pending."""
    with ApiServer(lambda _, __: Reply(status=429, headers={"Retry-After": "3600"})) as server:
        sink = ApiSink(config(server.url, max_retry_time=5.0), log=structlog.get_logger())
        started = time.monotonic()
        outcomes: list[Outcome] = []
        with pytest.raises(SinkUnavailableError) as raised:
            asyncio.run(sink.push(users(2), outcomes.append))
    assert time.monotonic() - started < 3.0
    assert (raised.value.reason, outcomes) == ("unavailable", [])


@pytest.mark.integration
def test_a_stop_ends_a_wait_between_retries_at_once() -> None:
    """A long backoff is cut short when the service is asked to stop."""
    stop = threading.Event()
    with ApiServer(lambda _, __: Reply(status=503)) as server:
        sink = ApiSink(
            config(server.url, max_retry_time=600.0),
            log=structlog.get_logger(),
            stop=stop,
            backoff=tenacity.wait_fixed(300),
        )
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(SinkUnavailableError) as raised:
            asyncio.run(sink.push(users(1), lambda _: None))
    assert time.monotonic() - started < 2.0
    assert raised.value.detail == "the service is stopping"


@pytest.mark.integration
def test_an_answer_that_drips_in_is_cut_off_at_the_timeout() -> None:
    """A body arriving a byte every 0.3 s never outlasts the 1 s timeout per attempt."""
    with ApiServer(lambda _, __: Reply(drip=0.3)) as server:
        sink = ApiSink(
            config(server.url, timeout=1.0, max_attempts=2),
            log=structlog.get_logger(),
            backoff=tenacity.wait_fixed(0.05),
        )
        started = time.monotonic()
        with capture_logs() as logs, pytest.raises(SinkUnavailableError):
            asyncio.run(sink.push(users(1), lambda _: None))
    assert time.monotonic() - started < 4.0
    assert [e["reason"] for e in logs if e["event"] == "import.retry_scheduled"] == [
        "ResponseTooSlow"
    ]


@pytest.mark.integration
def test_an_api_refusing_beyond_its_capacity_is_paced_to_it() -> None:
    """429 beyond 100 requests a second: every user imported, few refusals, the limit shrank."""
    lock = threading.Lock()
    bucket = {"tokens": 10.0, "at": time.monotonic()}
    refused = [0]

    def respond(_: dict[str, Any], __: int) -> Reply:
        with lock:
            now = time.monotonic()
            bucket["tokens"] = min(10.0, bucket["tokens"] + (now - bucket["at"]) * 100)
            bucket["at"] = now
            if bucket["tokens"] < 1:
                refused[0] += 1
                return Reply(status=429)
            bucket["tokens"] -= 1
        return Reply(delay=0.02)

    with ApiServer(respond) as server:
        sink = ApiSink(
            config(server.url, max_concurrency=16, max_attempts=20, max_retry_time=60.0),
            log=structlog.get_logger(),
            backoff=tenacity.wait_fixed(0.05),
        )
        outcomes = push(sink, users(400))
    assert [o.imported for o in outcomes] == [True] * 400
    assert refused[0] <= 40  # under a tenth of the requests (the benchmark measures the rate)
    _, high = sink.concurrency()
    assert sink.gate.pace.limit < high  # it grew, met the capacity, and came down


@pytest.mark.integration
def test_an_api_whose_first_answer_per_connection_is_quick_keeps_its_limit() -> None:
    """No TCP_NODELAY: 40 ms more on all but a connection's first answer; 16 stay 16, not 1."""
    limits: list[float] = []

    with ApiServer(nagle=True) as server:
        sink = ApiSink(
            config(server.url, max_concurrency=16),
            log=structlog.get_logger(),
            on_flight=lambda _, limit, __: limits.append(limit),
        )
        with capture_logs() as logs:
            outcomes = push(sink, users(1500))
        answered = sink.gate.pace.answers
    assert [o.imported for o in outcomes] == [True] * 1500
    # The API answered as described: most answers slow, the usual latency 40 ms or more.
    assert statistics.median(latency for _, latency in answered) > 0.03
    shrank = [e for e in logs if e["event"] == "import.pace_changed" and e["change"] == "shrank"]
    assert shrank == []
    assert min(limits[len(limits) // 2 :]) >= 16  # the second half ran at the maximum


def test_an_outage_is_one_warning_however_many_rows_wait_through_it() -> None:
    """Forty rows, four at a time, through 30 refused requests: one warning, detail at debug."""
    answers = iter([reply(503)] * 30)

    def handler(_: object) -> Answer:
        return next(answers, reply(200, {"success": True}))

    sink = quick_sink(
        config("https://api.example/push", max_concurrency=4, max_attempts=35),
        transport=FakeApi(handler),
        backoff=tenacity.wait_fixed(0),
    )
    with capture_logs() as logs:
        outcomes = push(sink, users(40))
    assert sorted(o.row for o in outcomes if o.imported) == list(range(2, 42))
    loud = [e["event"] for e in logs if e["log_level"] in ("warning", "error", "critical")]
    assert set(loud) - {"import.pace_changed"} == {"import.retrying"}
    assert 1 <= loud.count("import.retrying") <= 4  # as it begins, at most once per worker
    detail = [e["log_level"] for e in logs if e["event"] == "import.retry_scheduled"]
    assert detail == ["debug"] * 30
    assert [e for e in logs if e["event"] == "import.recovered"][-1]["retries"] >= 1
