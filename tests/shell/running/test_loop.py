"""The service's loop driven in-process: a fake observer, the injected clock, no sleeps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import structlog
from structlog.testing import capture_logs

from tests.support import OPSCOM_SCHEMA, Site, users_csv
from watcher.config import load_config
from watcher.core.signals import Change
from watcher.shell.intake import lane as intake
from watcher.shell.running.service import Service
from watcher.shell.running.workers import Done

if TYPE_CHECKING:
    from pathlib import Path

    from watcher.shell.journal import Journal

SETTINGS = 'batch_window = "10s"\nsettle_time = 2\nrescan_interval = 600\nheartbeat_interval = 3600'


class Clock:
    """The service's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The time the test set."""
        return self.now


class FakeWatch:
    """An observer that watches nothing: the test puts the events on the queue itself."""

    def __init__(self, *_: object) -> None:
        self.started = False

    def start(self) -> None:
        """Pretend to watch."""
        self.started = True

    def alive(self) -> bool:
        """Alive once started."""
        return self.started

    def stop(self) -> None:
        """Pretend to stop."""
        self.started = False


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Service, Site, Clock]:
    """A service on a site, with a fake observer and a clock the test moves."""
    monkeypatch.setattr(intake, "Watch", FakeWatch)
    site = Site(tmp_path, service=SETTINGS)
    clock = Clock()
    return Service(load_config(site.config), clock=clock, log=structlog.get_logger()), site, clock


def finish_workers(service: Service, journal: Journal) -> None:
    """Wait for the batch the loop started (a run on the engine), then take its Done like it."""
    for run in list(service.workers._tenants.values()):
        run.result(60)
    service.step(journal)


def test_an_upload_goes_from_its_event_to_the_store_by_the_clock(
    service: tuple[Service, Site, Clock],
) -> None:
    """Closed at t, ready after the settle time, batched when the window closes: not before."""
    svc, site, clock = service
    with svc.opened() as journal, capture_logs() as logs:
        svc.begin(journal)
        site.drop_file("a.csv", users_csv(3))
        svc.inbox.put(Change(tenant="jcu", name="a.csv", signal="closed"))
        svc.step(journal)
        clock.now += 1.9
        svc.step(journal)
        assert not [e for e in logs if e["event"] == "file.ready"]  # still settling
        clock.now += 0.2
        svc.step(journal)
        assert [e["file"] for e in logs if e["event"] == "file.ready"] == ["a.csv"]
        clock.now += 9.9
        svc.step(journal)
        assert not svc.workers.busy("jcu")  # the window is still open
        clock.now += 0.2
        svc.step(journal)
        finish_workers(svc, journal)
    assert sorted(site.users()) == ["U-00000", "U-00001", "U-00002"]
    assert [e["imported"] for e in logs if e["event"] == "batch.completed"] == [3]


def test_a_tenant_pass_that_raises_backs_off_and_the_loop_goes_on(
    service: tuple[Service, Site, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A look that raises is skipped for 5 s, then 10 s; the upload is imported all the same."""
    svc, site, clock = service
    looks: list[float] = []

    def broken_look(_: Any, now: float) -> None:
        looks.append(now)
        raise OSError(13, "Permission denied")

    monkeypatch.setattr(type(svc.roster.tenants["jcu"]), "look", broken_look)
    with svc.opened() as journal, capture_logs() as logs:
        svc.begin(journal)
        site.drop_file("a.csv", users_csv(2))
        svc.inbox.put(Change(tenant="jcu", name="a.csv", signal="closed"))
        for _ in range(60):  # 30 s of turns, every half second
            clock.now += 0.5
            svc.step(journal)
        finish_workers(svc, journal)
    assert [round(t - looks[0]) for t in looks] == [0, 5, 15]
    failed = [e for e in logs if e["event"] == "service.pass_failed"]
    assert [(e["task"], e["retry_in"]) for e in failed] == [
        ("look", 5.0),
        ("look", 10.0),
        ("look", 20.0),
    ]
    assert sorted(site.users()) == ["U-00000", "U-00001"]


def test_a_worker_that_could_not_finish_is_tried_again_later_and_later(
    service: tuple[Service, Site, Clock],
) -> None:
    """After an incomplete run the delay doubles from the rescan interval, up to an hour."""
    svc, _, clock = service
    workers = svc.workers
    delays = []
    for _ in range(5):
        workers.finished(Done(tenant="jcu", complete=False), clock.now)
        delays.append(workers.retry_due("jcu", clock.now + 10_000))
    workers.finished(Done(tenant="jcu", complete=True), clock.now)
    assert delays == [1200.0, 2400.0, 3600.0, 3600.0, 3600.0]
    assert workers.retry_due("jcu", clock.now + 599) is None
    assert workers.retry_due("jcu", clock.now + 600) == 600.0


class FakeOwnership:
    """Leases that say this instance holds one tenant too many."""

    def __init__(self) -> None:
        self.released: list[str] = []

    def excess(self) -> int:
        """One tenant above this instance's share."""
        return 1 - len(self.released)

    def release(self, tenant: str) -> None:
        """Give ``tenant`` back."""
        self.released.append(tenant)


def test_evening_out_gives_back_an_idle_tenant_and_never_a_busy_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Of two tenants, the one with a file settling is kept; the idle one is given back."""
    monkeypatch.setattr(intake, "Watch", FakeWatch)
    site = Site(tmp_path, service=SETTINGS)
    other = tmp_path / "sftp" / "other" / "upload"
    other.mkdir(parents=True)
    site.config.write_text(
        site.config.read_text()
        + f'\n[[tenant]]\nname = "other"\ndrop_dir = "{other}"\nschema = "{OPSCOM_SCHEMA}"\n'
        'failed_import_email = "r@other.example"\nreply_to = "a@other.example"\n'
    )
    clock = Clock()
    svc = Service(load_config(site.config), clock=clock, log=structlog.get_logger())
    ownership = FakeOwnership()
    with svc.opened() as journal:
        svc.begin(journal)
        site.drop_file("a.csv", users_csv(2))
        svc.inbox.put(Change(tenant="jcu", name="a.csv", signal="closed"))
        svc.step(journal)
        svc.roster.even_out(journal, ownership, clock.now)  # type: ignore[arg-type]
        kept = sorted(svc.roster.mine)
    assert ownership.released == ["other"]
    assert kept == ["jcu"]
