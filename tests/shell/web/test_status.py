"""`watcher status` against a real journal and a running service."""

from __future__ import annotations

import errno
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.support import Site, users_csv
from tests.support.apiserver import ApiServer, Reply
from tests.support.smtpserver import free_port
from watcher.cli import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, main
from watcher.config import load_config
from watcher.shell.statedir import StateDir
from watcher.shell.web.status import MAIL_LATE, gather

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def status(site: Site) -> dict[str, object]:
    """Run `watcher status --json`."""
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "status", "--json", "--config", str(site.config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == EXIT_OK, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_status_shows_the_last_batch_pending_rows_and_the_outbox(tmp_path: Path) -> None:
    """After a batch, status gives its counts; without a service, it says so."""
    site = Site(tmp_path)
    site.drop_file("a.csv", users_csv(4, bad_every=3))
    assert site.process("a.csv").returncode == 0
    found = status(site)
    assert found["running"] is False
    jcu = found["tenants"]["jcu"]  # type: ignore[index]
    assert jcu["last_batch"]["rows"] == 4
    assert (jcu["last_batch"]["imported"], jcu["last_batch"]["failed"]) == (2, 2)
    assert (jcu["pending_rows"], jcu["outbox"]["waiting"], jcu["outbox"]["rejected"]) == (0, 1, 0)
    assert (jcu["outbox"]["error"], jcu["outbox"]["late"]) == (None, False)  # no SMTP: kept
    text = subprocess.run(
        [sys.executable, "-m", "watcher", "status", "--config", str(site.config)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "service: not running" in text
    assert "4 rows: 2 imported, 2 failed" in text


def test_status_of_a_running_service_shows_files_and_the_schema_in_force(tmp_path: Path) -> None:
    """A file being written shows as uploading; the schema version in force is given."""
    site = Site(tmp_path, service='batch_window = "1m"\nsettle_time = 0.5')
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (site.state / "status.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with (site.drop / "growing.csv").open("w") as handle:
            handle.write("unique_id\nA-1\n")
            handle.flush()
            time.sleep(2)
            found = status(site)
            jcu = found["tenants"]["jcu"]  # type: ignore[index]
            assert found["running"] is True
            assert jcu["files"] == [{"name": "growing.csv", "state": "uploading"}]
            assert jcu["schema"]["version"] == "2026-11-22"
        time.sleep(2)
        jcu = status(site)["tenants"]["jcu"]  # type: ignore[index]
        assert jcu["files"] == [{"name": "growing.csv", "state": "in the next batch"}]
        assert 0 < jcu["batch_in"] <= 60
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def test_a_running_import_shows_its_pace_in_status(tmp_path: Path) -> None:
    """While rows go to a slow API, status says answers a second, in flight and the limit."""
    with ApiServer(lambda _, __: Reply(delay=0.05)) as api:
        site = Site(tmp_path, api_url=api.url, service='batch_window = "1s"\nsettle_time = 0.5')
        process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
            stdout=subprocess.DEVNULL,
        )
        try:
            site.drop_file("users.csv", users_csv(2000))  # 6 s or more at 50 ms, 16 at a time
            text, found = "", None
            deadline = time.monotonic() + 60
            while "answers a second from the API" not in text:
                assert time.monotonic() < deadline, text
                time.sleep(0.3)
                text = subprocess.run(
                    [sys.executable, "-m", "watcher", "status", "--config", str(site.config)],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
            found = status(site)["tenants"]["jcu"]["importing"]  # type: ignore[index]
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    assert re.search(
        r"a batch is running: [\d,]+ answers a second from the API, \d+ in flight", text
    )
    assert found is not None
    assert 0 <= found["in_flight"] <= 16
    assert 1 <= found["limit"] <= 16


def test_a_state_folder_this_user_may_not_read_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user outside the service's group gets what to do, not a traceback."""
    site = Site(tmp_path)

    def refuse(_: object) -> bool:
        raise PermissionError(errno.EACCES, "Permission denied", str(site.state))

    monkeypatch.setattr(StateDir, "locked", refuse)
    assert main(["status", "--config", str(site.config)]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"watcher: cannot read the state folder {site.state} (Permission denied): run watcher "
        "status as the service's user, root, or a member of its group\n"
    )


def test_status_says_why_rows_are_pending_and_since_when(tmp_path: Path) -> None:
    """A refused token: the pending rows come with the API's answer and the time of the stop."""
    with ApiServer(lambda _, __: Reply(status=401, body={"error": "token revoked"})) as api:
        site = Site(tmp_path, api_url=api.url)
        site.drop_file("a.csv", users_csv(3))
        before = time.time()
        assert site.process("a.csv").returncode == EXIT_INCOMPLETE
    jcu = status(site)["tenants"]["jcu"]  # type: ignore[index]
    assert jcu["pending_rows"] == 3
    why = jcu["pending_reason"]
    assert why["reason"] == "api auth: the API answered 401: token revoked"
    assert before - 1 <= why["since"] <= time.time()
    text = subprocess.run(
        [sys.executable, "-m", "watcher", "status", "--config", str(site.config)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert ": api auth: the API answered 401: token revoked" in text
    assert "    waiting since " in text


def test_status_of_one_tenant_lists_its_recent_batches_and_rows_per_day(tmp_path: Path) -> None:
    """``--tenant``: the page's content for scripts and terminals, newest batch first."""
    site = Site(tmp_path)
    site.drop_file("first.csv", users_csv(4, bad_every=2))
    assert site.process("first.csv").returncode == 0
    site.drop_file("second.csv", users_csv(3))
    assert site.process("second.csv").returncode == 0

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "watcher", "status", "--config", str(site.config), *extra],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip

    detail = json.loads(run("--json", "--tenant", "jcu").stdout)
    recent = detail["recent"]
    assert [b["files"] for b in recent] == [["second.csv"], ["first.csv"]]
    assert [(b["rows"], b["imported"], b["unchanged"], b["failed"]) for b in recent] == [
        (3, 2, 1, 0),  # one user known unchanged, two that failed before now imported
        (4, 2, 0, 2),
    ]
    assert recent[1]["codes"] == [["invalid_email", 2]]
    assert len(detail["daily"]) == 30
    today = detail["daily"][-1]
    assert (today["imported"], today["unchanged"], today["failed"]) == (4, 1, 2)
    assert detail["status"]["last_batch"]["rows"] == 3
    (site.drop / "check").mkdir()
    (site.drop / "check" / "fine.csv").write_text(users_csv(5))
    (site.drop / "check" / "some<bad>.csv").write_text(users_csv(4, bad_every=2))
    assert run("--tenant", "jcu").stdout.count("check lane: no file checked") == 1
    once = subprocess.run(
        [sys.executable, "-m", "watcher", "run", "--once", "--config", str(site.config)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert once.returncode == EXIT_OK, once.stderr
    detail = json.loads(run("--json", "--tenant", "jcu").stdout)
    assert detail["status"]["checks"]["files"] == 2
    assert detail["status"]["checks"]["clean"] == 1
    assert sorted((c["name"], c["rows"], c["failed"]) for c in detail["checks"]) == [
        ("fine.csv", 5, 0),
        ("some<bad>.csv", 4, 2),
    ]
    text = run("--tenant", "jcu").stdout
    assert "recent batches:" in text
    assert "1 file, 4 rows: 2 imported, 0 unchanged, 2 failed (invalid_email x2)" in text
    assert "check lane: 2 files checked in the last 7 days, 1 would import whole" in text
    assert "fine.csv: all 5 rows would import" in text
    assert "some<bad>.csv: 2 of 4 rows would fail" in text
    unknown = run("--tenant", "nobody")
    assert unknown.returncode == EXIT_USAGE
    assert "nobody" in unknown.stderr


def test_batches_of_an_older_version_get_their_counts_kept_at_start(tmp_path: Path) -> None:
    """A journal whose batches lack kept counts is filled in by the next run, not shown as zeros."""
    site = Site(tmp_path)
    site.drop_file("old.csv", users_csv(4, bad_every=2))
    assert site.process("old.csv").returncode == 0
    with sqlite3.connect(site.state / "journal.sqlite") as db:
        db.execute("UPDATE batches SET counts = NULL")  # as an older version left it
    assert site.process().returncode == 0  # nothing to import; the start-up fills in
    detail = json.loads(
        subprocess.run(
            [sys.executable, "-m", "watcher", "status", "--json", "--tenant", "jcu",
             "--config", str(site.config)],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout
    )  # fmt: skip
    (batch,) = detail["recent"]
    assert (batch["files"], batch["rows"], batch["imported"], batch["failed"]) == (
        ["old.csv"], 4, 2, 2,
    )  # fmt: skip
    assert detail["daily"][-1]["imported"] == 2


def test_mail_the_smtp_server_will_not_take_is_late_after_a_while_and_says_why(
    tmp_path: Path,
) -> None:
    """SMTP down: the report waits with the server's refusal; after MAIL_LATE it is late."""
    site = Site(tmp_path, smtp_port=free_port())  # nothing listens there
    site.drop_file("a.csv", users_csv(4, bad_every=3))
    site.process("a.csv")
    config = load_config(site.config)
    state = StateDir.of(config.service)
    box = gather(config, state)["tenants"]["jcu"]["outbox"]
    assert (box["waiting"], box["late"]) == (1, False)
    assert box["error"] is not None
    assert "refused" in box["error"].lower() or "connect" in box["error"].lower()
    later = gather(config, state, clock=lambda: time.time() + MAIL_LATE + 60)
    assert later["tenants"]["jcu"]["outbox"]["late"] is True
