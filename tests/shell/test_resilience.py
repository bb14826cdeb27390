"""No customer and no operator action stops the service: planted names and folders, failing passes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.shell.test_service import FAST, archived, events, named, running, wait_for
from tests.support import OPSCOM_SCHEMA, Site, users_csv
from watcher.shell import roster as roster_module

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
__all__ = ["events"]  # the fixture, shared with the service's tests


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]


def test_planted_names_and_a_customers_bak_at_start_keep_the_service_up(tmp_path: Path) -> None:
    """A restart meets impossible stamps and a customer's .bak: retention runs, the service serves."""
    site = Site(tmp_path, service=FAST, tenant='retention = "1d"')
    site.bak.mkdir()
    site.bak.chmod(0o2777)  # the customer's own, made after renaming the service's away
    planted = site.bak / "a.20200101T000000Z.deadbeef.csv"
    planted.write_text("unique_id\n")
    check_bak = site.drop / "check" / ".bak"
    check_bak.mkdir(parents=True)
    old = [
        f"{stem}.20200101T000000Z.0123abcd.csv"
        for stem in ("x.20260230T000000Z.deadbeef", "y.20269999T999999Z.deadbeef")
    ]
    future = "z.29991231T000000Z.deadbeef.20200101T000000Z.0123abcd.csv"
    for name in (*old, future):
        (check_bak / name).write_text("unique_id\n")
    log = tmp_path / "service.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: bool(named(_lines(log), "retention.pruned")))
        site.drop_file("after.csv", users_csv(3))
        wait_for(lambda: bool(named(_lines(log), "file.completed")))
        assert process.poll() is None
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines = _lines(log)
    assert named(lines, "service.pass_failed") == []
    (pruned,) = named(lines, "retention.pruned")
    assert pruned["archives"] == 3  # the service's stamps (2020) decide, not the customer's
    assert list(check_bak.iterdir()) == []
    assert [e["event"] for e in lines if e["event"].startswith("retention.bak")] == [
        "retention.bak_not_ours"
    ]
    aside = [p for p in site.drop.iterdir() if p.name.startswith(".bak.not-ours.")]
    assert [p.name for p in aside[0].iterdir()] == [planted.name]  # the customer's, untouched
    assert sorted(site.users()) == ["U-00000", "U-00001", "U-00002"]
    assert stopped_in < 10


def test_a_pass_that_raises_is_logged_backed_off_and_the_rest_goes_on(
    tmp_path: Path, events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention raising at start is one error line; uploads are still imported."""

    def broken(*_: object) -> None:
        raise ValueError("day is out of range for month")

    monkeypatch.setattr(roster_module, "prune", broken)
    site = Site(tmp_path, service=FAST, tenant='retention = "1d"')
    with running(site):
        wait_for(lambda: bool(named(events, "service.pass_failed")))
        site.drop_file("a.csv", users_csv(2))
        wait_for(lambda: len(archived(site)) == 1)
    (failed,) = named(events, "service.pass_failed")
    assert {k: failed[k] for k in ("tenant", "task", "error", "failures", "retry_in")} == {
        "tenant": "jcu",
        "task": "retention",
        "error": "ValueError",
        "failures": 1,
        "retry_in": 5.0,
    }
    assert failed["where"].startswith("test_resilience.py:")
    assert "out of range" not in str(failed)


def test_a_tenant_whose_folder_vanishes_is_said_once_and_the_others_go_on(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """A drop folder removed under the running service: one line, no end, the other tenant served."""
    site = Site(tmp_path, service=FAST)
    other = tmp_path / "sftp" / "other" / "upload"
    other.mkdir(parents=True)
    site.config.write_text(
        site.config.read_text()
        + f"""
[[tenant]]
name = "other"
drop_dir = "sftp/other/upload"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "registrar@other.example"
reply_to = "admin@other.example"
"""
    )
    with running(site) as service:
        shutil.rmtree(tmp_path / "sftp" / "jcu")
        time.sleep(6)  # past a look at every tenant's folders and a rescan
        (other / "b.csv").write_text(users_csv(2))
        wait_for(lambda: any(p.name.startswith("b.") for p in (other / ".bak").glob("*.csv")))
        assert service.roster.tenants["jcu"].imports.folder_ok is False
    assert [e["tenant"] for e in named(events, "tenant.drop_dir_missing")] == ["jcu"]
    assert named(events, "service.pass_failed") == []
    assert os.path.exists(other / ".bak")  # noqa: PTH110
