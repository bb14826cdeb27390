"""No customer and no operator action stops the service: planted names and folders, failing passes."""

from __future__ import annotations

import contextlib
import email
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.shell.running.test_service import FAST, archived, events, named, running, wait_for
from tests.support import OPSCOM_SCHEMA, Site, users_csv
from tests.support.names import customer_names
from tests.support.smtpserver import free_port
from watcher.core.names import answer_name
from watcher.shell.journal import Journal
from watcher.shell.pipeline.context import BatchContext
from watcher.shell.running import roster as roster_module
from watcher.shell.running.retention import prune

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


def _check_folder(site: Site) -> Path:
    check = site.drop / "check"
    check.mkdir(exist_ok=True)
    return check


def test_no_name_or_entry_in_check_holds_up_another_files_answer(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """A 250-byte name, a folder where an answer goes, a link, a FIFO: every file gets its due."""
    site = Site(tmp_path, service=FAST)
    check = _check_folder(site)
    long_name = "n" * 246 + ".csv"
    for name in (long_name, "y.csv", "ok.csv"):
        (check / name).write_text(users_csv(3, bad_every=2))
    (check / "y.csv.check.json").mkdir()  # in the way of y.csv's answer
    (check / "link.csv").symlink_to("/etc/passwd")
    os.mkfifo(check / "pipe.csv")
    with running(site):
        wait_for(lambda: bool(named(events, "check.set_aside")), 60)
        wait_for(lambda: not (check / "ok.csv").exists() and not (check / long_name).exists())
    answered = {e["file"] for e in named(events, "check.answered")}
    assert answered == {long_name, "ok.csv"}
    assert (check / "ok.csv.check.json").is_file()
    assert (check / answer_name(long_name, ".check.json")).is_file()
    assert {e["file"] for e in named(events, "check.refused")} == {"link.csv", "pipe.csv"}
    (aside,) = named(events, "check.set_aside")
    assert (aside["file"], aside["attempts"], aside["code"]) == ("y.csv", 2, "file_unprocessable")
    assert [e["attempt"] for e in named(events, "check.failed")] == [1, 2]
    assert (check / ".bak" / aside["archived_as"]).is_file()
    assert named(events, "service.pass_failed") == []
    assert site.users() == {}
    # Every answer is kept for the page, counts and codes only: one line per file.
    journal = Journal(site.state / "journal.sqlite", read_only=True)
    try:
        kept = {c.name: (c.rows, c.failed, c.code) for c in journal.checks.recent("jcu")}
    finally:
        journal.close()
    assert kept == {
        long_name: (3, 2, None),
        "ok.csv": (3, 2, None),
        "link.csv": (0, 0, "file_refused"),
        "pipe.csv": (0, 0, "file_refused"),
        "y.csv": (0, 0, "file_unprocessable"),
    }


def test_a_flood_of_checks_is_a_few_messages_not_a_flood_of_email(tmp_path: Path) -> None:
    """Forty files at once: one message tells of them, the next ones wait for the interval."""
    site = Site(tmp_path, service=FAST + '\ncheck_mail_every = "4s"')
    check = _check_folder(site)
    for i in range(40):
        (check / f"f{i:02d}.csv").write_text(users_csv(2, bad_every=2, start=i * 10))
    outbox = site.state / "outbox"

    def told() -> list[int]:
        counts = []
        for path in sorted(outbox.glob("check-*.eml")):
            subject = next(x for x in path.read_text().splitlines() if x.startswith("Subject:"))
            counts.append(
                int(subject.split("Checks of ")[1].split()[0]) if "Checks of" in subject else 1
            )
        return counts

    with running(site):
        wait_for(lambda: sum(told()) == 40, 60)
        first = told()
        for i in range(40, 45):
            (check / f"f{i:02d}.csv").write_text(users_csv(2, start=i * 10))
        wait_for(lambda: all(not (check / f"f{i:02d}.csv").exists() for i in range(40, 45)))
        before_interval = told()
        wait_for(lambda: sum(told()) == 45, 30)
    assert len(first) <= 2
    assert sum(before_interval) == 40 or len(before_interval) <= len(first) + 1
    assert len(told()) <= len(first) + 1
    attached = [
        a
        for p in outbox.glob("check-*.eml")
        for a in email.message_from_bytes(p.read_bytes()).walk()
        if a.get_filename()
    ]
    assert 0 < len(attached) <= 10 * len(told())


def _start(site: Site, log: Path) -> subprocess.Popen[bytes]:
    """``watcher run`` for ``site``, its log in ``log``, once it has started."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_for(lambda: bool(named(_lines(log), "service.started")) or process.poll() is not None)
    return process


def _stopped_in(process: subprocess.Popen[bytes], limit: float) -> float:
    """SIGTERM, then how long the process took to exit 0 (killed and failed past ``limit``)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(limit) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return time.monotonic() - started


def test_sigterm_with_mail_down_and_a_busy_check_lane_ends_within_seconds(
    tmp_path: Path,
) -> None:
    """300 files to check, the SMTP server down: SIGTERM ends it all, the rest left queued."""
    site = Site(tmp_path, smtp_port=free_port(), service=FAST)
    check = _check_folder(site)
    for i in range(300):
        (check / f"f{i:03d}.csv").write_text(users_csv(3, bad_every=2, start=i * 10))
    log = tmp_path / "service.log"
    process = _start(site, log)
    wait_for(lambda: len(named(_lines(log), "check.answered")) >= 20, 60)
    took = _stopped_in(process, 10)
    lines = _lines(log)
    assert named(lines, "service.stopped")
    assert len(named(lines, "check.answered")) < 300  # the rest wait in check/ for the next start
    assert any(check.glob("f*.csv"))
    assert took < 10


def test_sigterm_at_any_moment_of_a_busy_service_ends_it_within_seconds(tmp_path: Path) -> None:
    """Ten SIGTERMs at random moments while the service logs for 200 files: each exit is prompt."""
    rng = random.Random(21)  # noqa: S311 - moments, not secrets
    times = []
    for trial in range(10):
        site = Site(tmp_path / f"t{trial}", smtp_port=free_port(), service=FAST)
        check = _check_folder(site)
        for i in range(100):
            site.drop_file(f"u{i:03d}.csv", users_csv(2, bad_every=2, start=i * 10))
            (check / f"c{i:03d}.csv").write_text(users_csv(2, bad_every=2, start=i * 10))
        process = _start(site, tmp_path / f"t{trial}.log")
        time.sleep(rng.uniform(0.0, 2.5))
        times.append(_stopped_in(process, 10))
    assert max(times) < 10, times


def test_any_name_a_customer_gives_leaves_the_tenant_served(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Generated names through both lanes, archiving and retention: a normal file still imports."""
    site = Site(tmp_path, service=FAST, tenant='retention = "1d"')
    check = _check_folder(site)
    made = [0]

    with running(site) as service:

        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(st.lists(customer_names(), min_size=1, max_size=4, unique=True))
        def example(names: list[str]) -> None:
            made[0] += 1
            k = made[0]
            for i, name in enumerate(names):
                if name in (".bak", "check"):
                    continue
                body = f"unique_id,first_name,email\nP-{k}-{i},Pat,p{k}.{i}@jcu.example\n"
                for folder in (site.drop, check):
                    with contextlib.suppress(IsADirectoryError):
                        (folder / name).write_text(body)
            site.drop_file(f"normal-{k}.csv", users_csv(1, start=k * 1000))
            wait_for(lambda: f"U-{k * 1000:05d}" in site.users(), 30)
            assert service.stop.is_set() is False

        example()
        journal = Journal(site.state / "journal.sqlite")
        try:
            ctx = BatchContext(
                config=service.config, journal=journal, state=service.state, log=service.log
            )
            pruned = prune(ctx, service.config.tenant("jcu"), time.time() + 2 * 86400)
        finally:
            journal.close()
        site.drop_file("last.csv", users_csv(1, start=99_000))
        wait_for(lambda: "U-99000" in site.users(), 30)
    assert pruned is not None
    assert pruned.archives > 0
    assert named(events, "service.pass_failed") == []
    assert named(events, "batch.failed") == []
