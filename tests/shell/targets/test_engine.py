"""The import engine: one loop for every tenant's requests, a pool per API host, isolation."""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from tests.support import OPSCOM_SCHEMA, users_csv
from tests.support.apiserver import ApiServer, Reply
from tests.support.smtpserver import SmtpServer
from watcher.config import ApiConfig, Secret
from watcher.shell import logs
from watcher.shell.running.workers import MAIL_THREADS
from watcher.shell.targets.api import ApiSink
from watcher.shell.targets.engine import STEP_THREADS, Engine

if TYPE_CHECKING:
    from collections.abc import Iterator

    from watcher.shell.targets.sinks import Outcome

pytestmark = pytest.mark.integration


@pytest.fixture
def engine() -> Iterator[Engine]:
    """An engine, closed at the end."""
    made = Engine()
    yield made
    made.close()


def test_a_push_runs_on_the_engines_loop_with_the_callers_log_bindings(engine: Engine) -> None:
    """The loop's thread is not the caller's; what the caller bound is bound there too."""
    seen: dict[str, Any] = {}

    async def where() -> str:
        seen.update(structlog.contextvars.get_contextvars())
        return threading.current_thread().name

    logs.bind(tenant="jcu")
    try:
        assert engine.submit(where()).result(10) == "imports"
    finally:
        logs.unbind("tenant")
    assert seen["tenant"] == "jcu"


def test_tenants_of_one_api_host_share_a_pool_and_others_have_their_own(engine: Engine) -> None:
    """Same scheme, host and port: one pool; another port: another."""
    with ApiServer() as one, ApiServer() as two:
        first = engine.transport(one.url)
        again = engine.transport(one.url.replace("/push", "/other"))
        other = engine.transport(two.url)
    assert first.session is again.session
    assert first.session is not other.session


def test_a_closed_engine_cancels_what_runs_and_starts_again_when_used(engine: Engine) -> None:
    """A push still waiting when the process winds down is cancelled, not left hanging."""

    async def forever() -> None:
        await asyncio_sleep(3600)

    hanging = engine.submit(forever())
    engine.close()
    with pytest.raises(concurrent.futures.CancelledError):
        hanging.result(10)

    async def answer() -> int:
        return 42

    assert engine.submit(answer()).result(10) == 42


async def asyncio_sleep(seconds: float) -> None:
    """asyncio.sleep, named for the test above."""
    import asyncio  # noqa: PLC0415

    await asyncio.sleep(seconds)


def test_one_tenants_hanging_api_does_not_slow_anothers_on_the_same_loop(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push to an API that never answers in time, and one to a quick API, at once."""
    monkeypatch.setenv("ENGINE_TOKEN", "tok")

    def sink(url: str, timeout: float) -> ApiSink:
        return ApiSink(
            ApiConfig(
                url=url,
                token=Secret(env="ENGINE_TOKEN"),
                max_concurrency=4,
                timeout=timeout,
                max_attempts=2,
                max_retry_time=3.0,
            ),
            log=structlog.get_logger(),
            transport=engine.transport(url),
        )

    rows: list[dict[str, str | int | None]] = [
        {"row": i + 2, "unique_id": f"U{i}"} for i in range(200)
    ]
    quick_done: list[Outcome] = []
    with ApiServer(lambda _, __: Reply(delay=30)) as slow, ApiServer() as quick:
        stuck = engine.submit(sink(slow.url, 1.0).push(iter(list(rows)), lambda _: None))
        started = time.monotonic()
        engine.submit(sink(quick.url, 5.0).push(iter(list(rows)), quick_done.append)).result(30)
        quick_took = time.monotonic() - started
        assert not stuck.done()  # still waiting on its API while the other finished
        with contextlib.suppress(Exception):
            stuck.result(30)
    assert len(quick_done) == 200
    assert all(o.imported for o in quick_done)
    assert quick_took < 20  # far less, unless the other's 30 s answers held it up


def _threads(pid: int) -> int:
    """The process's Python threads (polars' own runtime names its threads: not counted)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return sum(1 for task in tasks if (task / "comm").read_text().startswith("python"))


@contextlib.contextmanager
def _running(root: Path, sections: str) -> Iterator[subprocess.Popen[bytes]]:
    """``watcher run`` on a quick-paced configuration with ``sections`` (its tenants, ...).

    Given a few seconds to start watching; stopped by SIGTERM at the end.
    """
    config = root / "watcher.toml"
    config.write_text(
        f'[service]\nstate_dir = "{root / "state"}"\nbatch_window = "1s"\n'
        "settle_time = 0.5\nrescan_interval = 2\n" + sections
    )
    service = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(3)
        yield service
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(60)


def _tenant(name: str, root: Path, url: str | None) -> str:
    """A tenant's section, its drop folder made; with an API at ``url``, else the embedded store."""
    drop = root / name
    drop.mkdir()
    section = (
        f'[[tenant]]\nname = "{name}"\ndrop_dir = "{drop}"\nschema = "{OPSCOM_SCHEMA}"\n'
        f'failed_import_email = "r@{name}.example"\nreply_to = "a@{name}.example"\n'
    )
    if url is None:
        return section
    token = root / f"{name}.token"
    token.write_text("tok\n")
    token.chmod(0o600)
    return section + (
        f'[tenant.api]\nurl = "{url}"\ntoken_file = "{token}"\nmax_concurrency = 4\n'
        "timeout = 2\nmax_attempts = 3\nmax_retry_time = 8\n"
    )


def test_fifty_tenants_import_at_once_and_a_refusing_and_a_hanging_api_hold_up_nobody(
    tmp_path: Path,
) -> None:
    """48 tenants against quick APIs finish while one gets 429s and one never answers."""
    names = [f"t{n:02d}" for n in range(50)]
    with contextlib.ExitStack() as stack:
        apis = {
            name: stack.enter_context(
                ApiServer(
                    (lambda _, __: Reply(status=429, headers={"Retry-After": "1"}))
                    if name == "t00"
                    else (lambda _, __: Reply(delay=30))
                    if name == "t01"
                    else (lambda _, __: Reply(delay=0.02))
                )
            )
            for name in names
        }
        tenants = "".join(_tenant(n, tmp_path, apis[n].url) for n in names)
        service = stack.enter_context(_running(tmp_path, tenants))
        idle = _threads(service.pid)  # watching the folders: a few for each tenant
        most = idle
        for n, name in enumerate(names):
            (tmp_path / name / "users.csv").write_text(users_csv(40, start=n * 100))
        quick = [n for n in names if n not in ("t00", "t01")]
        deadline = time.monotonic() + 90
        while not all(len(apis[n].ids()) >= 40 for n in quick):
            assert time.monotonic() < deadline, [n for n in quick if len(apis[n].ids()) < 40]
            most = max(most, _threads(service.pid))
            time.sleep(0.2)
        still_pending = [n for n in ("t00", "t01") if (tmp_path / n / "users.csv").exists()]
    assert all(len(set(apis[n].ids())) == 40 for n in quick)
    assert still_pending == ["t00", "t01"]  # their rows wait; nobody else's did
    # Fifty tenants importing at once are fifty tasks: the threads they add are
    # the steps' pool, the engine's loop and the mail threads, whatever the
    # number of tenants (one spare, for a check or a notice).
    assert most - idle <= STEP_THREADS + 1 + MAIL_THREADS + 1, (idle, most)


def test_mail_waiting_on_a_slow_relay_holds_up_no_other_tenants_batch(tmp_path: Path) -> None:
    """Reports to a relay that stalls hold no step thread: a late upload still goes through.

    More tenants than step threads each write a report; while every one of
    those messages still waits on the relay, another tenant's batch runs.
    """
    names = [f"t{n:02d}" for n in range(STEP_THREADS + 2)]
    smtp = SmtpServer()
    smtp.recorder.delay = 60.0  # DATA answered after a minute
    mail = f'[email]\nhost = "127.0.0.1"\nport = {smtp.port}\ntimeout = 120\n'
    tenants = "".join(_tenant(n, tmp_path, None) for n in [*names, "late"])
    with contextlib.ExitStack() as stack:
        smtp.controller.start()
        stack.enter_context(_running(tmp_path, mail + tenants))
        stack.callback(smtp.controller.stop)  # first: the waiting mail fails and is kept
        for name in names:  # every file has failing rows: a report each
            (tmp_path / name / "users.csv").write_text(users_csv(6, bad_every=2))
        deadline = time.monotonic() + 60
        while any((tmp_path / n / "users.csv").exists() for n in names):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        (tmp_path / "late" / "users.csv").write_text(users_csv(3, start=500))
        while (tmp_path / "late" / "users.csv").exists():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        relayed = len(smtp.messages)
    assert relayed == 0  # the late batch finished while every report still waited
    assert sorted(p.name for p in (tmp_path / "late" / ".bak").iterdir() if "result" in p.name)
