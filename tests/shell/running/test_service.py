"""The long-running service on the real filesystem, with real watchdog observers."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from structlog.testing import LogCapture

from tests.support import OPSCOM_SCHEMA, Site, require_root, users_csv
from tests.support.apiserver import ApiServer, Reply
from watcher.config import load_config
from watcher.core.states import Safeguard
from watcher.errors import AlreadyRunningError
from watcher.shell.intake import watching
from watcher.shell.journal import Journal
from watcher.shell.pipeline import batches
from watcher.shell.running.service import Service
from watcher.shell.statedir import StateDir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watcher.shell.pipeline.turns import Turns

pytestmark = pytest.mark.integration
FAST = 'batch_window = "1s"\nsettle_time = 0.5\nrescan_interval = 2\nheartbeat_interval = 3600'


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds or the time is up."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """Every log event the service emits while the test runs."""
    capture = LogCapture()
    structlog.configure(processors=[capture], cache_logger_on_first_use=False)
    yield capture.entries  # type: ignore[misc]
    structlog.reset_defaults()


@contextmanager
def running(site: Site) -> Iterator[Service]:
    """The service for ``site``, in a thread, stopped at the end."""
    service = Service(load_config(site.config))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    wait_for(lambda: any(t.imports.watch.alive() for t in service.roster.tenants.values()), 10)
    try:
        yield service
    finally:
        service.request_stop()
        thread.join(30)
        assert not thread.is_alive()


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The events called ``name``."""
    return [e for e in events if e["event"] == name]


def archived(site: Site) -> list[str]:
    """The names of the files archived in .bak (not results or reports)."""
    if not site.bak.exists():
        return []
    return sorted(
        p.name for p in site.bak.iterdir() if not p.name.endswith((".json", ".failures.csv"))
    )


def site_with_schema(tmp_path: Path, text: str, *, service: str) -> tuple[Site, Path]:
    """A site whose tenant uses its own schema file holding ``text``, to edit."""
    schema = tmp_path / "schema.json"
    schema.write_text(text)
    site = Site(tmp_path, service=service)
    site.config.write_text(site.config.read_text().replace(str(OPSCOM_SCHEMA), str(schema)))
    return site, schema


def test_uploads_are_batched_processed_and_archived(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Files dropped within a window go through one batch."""
    site = Site(tmp_path, service=FAST)
    with running(site):
        site.drop_file("a.csv", users_csv(3))
        site.drop_file("b.csv", users_csv(2, start=100))
        wait_for(lambda: len(archived(site)) == 2)
    (batch,) = named(events, "batch.completed")
    assert (batch["files"], batch["imported"]) == (2, 5)
    assert sorted(site.users()) == ["U-00000", "U-00001", "U-00002", "U-00100", "U-00101"]


def test_a_file_still_being_written_is_never_taken(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Half a file, quiet for longer than the window and settle time, is left alone."""
    site = Site(tmp_path, service=FAST)
    content = users_csv(200)
    half = len(content) // 2
    with running(site), (site.drop / "slow.csv").open("w") as handle:
        handle.write(content[:half])
        handle.flush()
        time.sleep(3.0)
        assert named(events, "file.claimed") == []
        handle.write(content[half:])
    with running(site):
        wait_for(lambda: len(archived(site)) == 1)
    assert len(site.users()) == 200


def test_a_file_held_open_for_writing_waits_for_its_writer(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """A complete-looking file that a process still holds open is not taken."""
    site = Site(tmp_path, service=FAST)
    path = site.drop_file("held.csv", users_csv(3))
    with running(site):
        holder = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            time.sleep(0.1)
            os.utime(path)  # a touch, as a client might, before holding it open
            wait_for(lambda: bool(named(events, "file.still_open")), 10)
            assert archived(site) == []
        finally:
            os.close(holder)
        wait_for(lambda: len(archived(site)) == 1)


def test_files_that_arrived_while_stopped_are_found_at_start(tmp_path: Path) -> None:
    """The startup scan takes files no event announced."""
    site = Site(tmp_path, service=FAST)
    site.drop_file("early.csv", users_csv(2))
    with running(site):
        wait_for(lambda: len(archived(site)) == 1)


def test_lost_events_are_made_up_by_the_rescan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every event lost, the periodic rescan still finds the file."""
    monkeypatch.setattr(watching, "changes", lambda *_: [])
    site = Site(tmp_path, service=FAST)
    with running(site):
        site.drop_file("quiet.csv", users_csv(2))
        wait_for(lambda: len(archived(site)) == 1)


def test_a_dead_observer_is_restarted_and_followed_by_a_scan(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """An observer that dies is noticed, restarted, and what it missed is found."""
    site = Site(tmp_path, service=FAST.replace("rescan_interval = 2", "rescan_interval = 3600"))
    with running(site) as service:
        service.roster.tenants["jcu"].imports.watch.stop()
        site.drop_file("missed.csv", users_csv(2))
        wait_for(lambda: len(archived(site)) == 1, 20)
    assert named(events, "watch.observer_died")
    assert named(events, "watch.observer_restarted")


def test_temporary_names_are_never_taken_and_leftovers_reported_once(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Temporary names are not imported; left unchanged long enough, each is reported once."""
    site = Site(tmp_path, service=FAST + '\nleftover_after = "1s"')
    with running(site):
        site.drop_file("users.csv.filepart", users_csv(3))
        site.drop_file(".hidden.csv", users_csv(3))
        wait_for(lambda: len(named(events, "file.left_unfinished")) == 2, 20)
        time.sleep(5)
    assert sorted(e["file"] for e in named(events, "file.left_unfinished")) == [
        ".hidden.csv",
        "users.csv.filepart",
    ]
    assert named(events, "file.claimed") == []
    assert (site.drop / "users.csv.filepart").exists()


def test_a_file_in_a_subfolder_is_reported_once_and_not_imported(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """sub/inner.csv is named once in the log (over several rescans) and left where it is."""
    site = Site(tmp_path, service=FAST)
    (site.drop / "sub").mkdir()
    site.drop_file("sub/inner.csv", users_csv(3))
    with running(site):
        wait_for(lambda: bool(named(events, "file.in_subfolder")), 20)
        time.sleep(5)  # two more rescans
    (event,) = named(events, "file.in_subfolder")
    assert (event["folder"], event["file"]) == ("sub", "inner.csv")
    assert named(events, "file.claimed") == []
    assert (site.drop / "sub" / "inner.csv").exists()


def test_a_state_folder_that_takes_no_writes_is_logged_once_and_does_not_spin(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Status writes failing for 4 s: one error, little CPU; once writable, one recovery line."""
    site = Site(tmp_path, service=FAST)
    with running(site):
        blocker = site.state / "status.json"
        wait_for(blocker.exists, 10)
        while not blocker.is_dir():  # a folder in its place: every write's rename fails
            blocker.unlink(missing_ok=True)
            with contextlib.suppress(FileExistsError):
                blocker.mkdir()
        wait_for(lambda: bool(named(events, "service.state_unwritable")), 10)
        cpu = time.process_time()
        time.sleep(4)
        used = time.process_time() - cpu
        blocker.rmdir()
        wait_for(lambda: bool(named(events, "service.state_writable")), 40)
    assert len(named(events, "service.state_unwritable")) == 1
    assert used < 1.0, used


def test_polling_mode_works_without_close_events(tmp_path: Path) -> None:
    """On network filesystems the polling observer and stability decide."""
    site = Site(tmp_path, service=FAST + '\nobserver = "polling"')
    with running(site):
        site.drop_file("nfs.csv", users_csv(4))
        wait_for(lambda: len(archived(site)) == 1)
    assert len(site.users()) == 4


def test_one_tenant_waiting_on_its_api_does_not_delay_another(tmp_path: Path) -> None:
    """A slow tenant's batch runs beside a fast tenant's."""
    with ApiServer(lambda _, __: Reply(delay=1.0)) as api:
        slow = Site(tmp_path / "slow", api_url=api.url)
        fast = Site(tmp_path / "fast")
        both = tmp_path / "both.toml"
        both.write_text(
            f"""
[service]
state_dir = "{tmp_path / "state"}"
{FAST}

[[tenant]]
name = "slow"
drop_dir = "{slow.drop}"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "a@slow.example"
reply_to = "b@slow.example"
[tenant.api]
url = "{api.url}"
token_file = "{slow.token}"
concurrency = 4

[[tenant]]
name = "fast"
drop_dir = "{fast.drop}"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "a@fast.example"
reply_to = "b@fast.example"
"""
        )
        service = Service(load_config(both))
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            slow.drop_file("s.csv", users_csv(8))
            time.sleep(0.2)
            fast.drop_file("f.csv", users_csv(3, start=50))
            wait_for(lambda: len(archived(fast)) == 1, 20)
            assert archived(slow) == []  # still importing: 8 users at 1 s each, 4 at a time
            wait_for(lambda: len(archived(slow)) == 1, 30)
        finally:
            service.request_stop()
            thread.join(30)


def test_a_failing_batch_is_logged_and_the_service_goes_on(
    tmp_path: Path, events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in one batch does not stop the service."""
    real_run = batches.BatchRun.run
    calls = [0]

    def flaky(self: batches.BatchRun) -> Turns[batches.BatchResult]:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("boom")
        return real_run(self)

    monkeypatch.setattr(batches.BatchRun, "run", flaky)
    site = Site(tmp_path, service=FAST)
    with running(site):
        site.drop_file("first.csv", users_csv(2))
        wait_for(lambda: bool(named(events, "batch.failed")))
        site.drop_file("second.csv", users_csv(2, start=10))
        wait_for(lambda: len(archived(site)) == 2)
    (failure,) = named(events, "batch.failed")
    assert (failure["error"], "boom" in str(failure)) == ("RuntimeError", False)


def test_a_held_batch_is_imported_by_the_running_service_once_approved(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """The service holds a mass change, lets a later upload wait, and acts on the approval."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, service=FAST, tenant="safeguard_min_known = 10")
        with running(site):
            site.drop_file("users.csv", users_csv(20))
            wait_for(lambda: len(archived(site)) == 1)
            site.drop_file("users.csv", users_csv(20).replace("@jcu.example", "@new.example"))
            wait_for(lambda: bool(named(events, "batch.held")), 20)
            site.drop_file("later.csv", users_csv(2, start=100))
            wait_for(lambda: bool(named(events, "batch.waiting")), 20)
            assert len(api.ids()) == 20
            journal = Journal(site.state / "journal.sqlite")
            try:
                (held,) = [b for b in journal.batches.unfinished("jcu") if b.safeguard]
                assert journal.batches.decide(held.id, Safeguard.APPROVED)
            finally:
                journal.close()
            wait_for(lambda: len(archived(site)) == 3, 30)
        ids = api.ids()[20:]
    assert sorted(ids) == sorted([f"U-{i:05d}" for i in range(20)] + ["U-00100", "U-00101"])
    assert [e["rows"] for e in named(events, "batch.released")] == [20]


def test_pending_rows_are_resumed_without_a_new_upload(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """After a refused token is replaced, the service resumes the batch at a rescan, backing off."""
    refuse = threading.Event()
    refuse.set()

    def respond(_: dict[str, Any], __: int) -> Reply:
        return Reply(status=401, body={"error": "bad token"}) if refuse.is_set() else Reply()

    with ApiServer(respond) as api:
        site = Site(tmp_path, api_url=api.url, service=FAST)
        with running(site):
            site.drop_file("a.csv", users_csv(3))
            wait_for(lambda: len(named(events, "batch.incomplete")) >= 2, 20)
            refuse.clear()
            wait_for(lambda: len(archived(site)) == 1, 30)
    retries = named(events, "batch.retrying")
    assert [r["after"] for r in retries[:2]] == [4, 8]  # rescan 2 s, doubled per failed run
    (done,) = named(events, "batch.completed")
    assert done["imported"] == 3


def _send(path: Path, text: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.sendto(f"<38>Nov 22 06:00:00 internal-sftp[{text}".encode(), str(path))


def chroot_site(tmp_path: Path, extra: str = "") -> tuple[Site, Path]:
    """A site whose drop folder is a chroot's upload/, with the log socket configured."""
    site = Site(tmp_path, service=FAST + extra, tenant='sftp_log_socket = "sftp/jcu/dev/log"')
    return site, site.root / "sftp" / "jcu" / "dev" / "log"


def test_an_interrupted_upload_is_held_until_resumed(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Forced close in the SFTP log holds the file; the resumed upload's close releases it."""
    site, log = chroot_site(tmp_path)
    content = users_csv(50)
    with running(site):
        wait_for(log.exists, 10)
        _send(log, '42]: open "/upload/big.csv" flags WRITE,CREATE,TRUNCATE mode 0644')
        site.drop_file("big.csv", content[:300])
        _send(log, '42]: forced close "/upload/big.csv" bytes read 0 written 300')
        time.sleep(3)
        assert named(events, "file.claimed") == []
        _send(log, '43]: open "/upload/big.csv" flags WRITE,APPEND,CREATE mode 0644')
        with (site.drop / "big.csv").open("a") as handle:
            handle.write(content[300:])
        _send(log, f'43]: close "/upload/big.csv" bytes read 0 written {len(content) - 300}')
        wait_for(lambda: len(archived(site)) == 1)
    assert len(site.users()) == 50
    assert [e["event"] for e in events if e["event"].startswith("sftp.upload")] == [
        "sftp.upload_started", "sftp.upload_interrupted", "sftp.upload_started", "sftp.upload_finished",
    ]  # fmt: skip


def test_forged_log_lines_from_another_account_cannot_set_an_upload_aside(
    events: list[dict[str, Any]],
) -> None:
    """After a genuine close, nobody's forged open + forced close is ignored and the file imported."""
    require_root("sending as another account")
    nobody = pwd.getpwnam("nobody")
    root = Path(tempfile.mkdtemp(prefix="watcher-forge-"))
    try:
        root.chmod(0o755)
        site, log = chroot_site(root)
        for folder in (site.root / "sftp", site.root / "sftp" / "jcu"):
            folder.chmod(0o755)
        content = users_csv(5)
        forge = (
            "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
            "for text in sys.argv[2:]: s.sendto(text.encode(), sys.argv[1])"
        )
        with running(site):
            wait_for(log.exists, 10)
            (log.parent).chmod(0o755)
            _send(log, '42]: open "/upload/v.csv" flags WRITE,CREATE,TRUNCATE mode 0644')
            site.drop_file("v.csv", content)
            _send(log, f'42]: close "/upload/v.csv" bytes read 0 written {len(content)}')
            subprocess.run(
                ["/usr/bin/python3", "-c", forge, str(log),
                 '<38>Nov 22 06:00:01 internal-sftp[99]: open "/upload/v.csv" flags WRITE,APPEND',
                 '<38>Nov 22 06:00:02 internal-sftp[99]: forced close "/upload/v.csv" bytes read 0 written 1'],
                user=nobody.pw_uid, group=nobody.pw_gid, check=True, timeout=30,
            )  # fmt: skip
            wait_for(lambda: len(archived(site)) == 1)
        assert len(site.users()) == 5
    finally:
        shutil.rmtree(root)
    (untrusted,) = named(events, "sftp.untrusted_sender")
    assert untrusted["uid"] == nobody.pw_uid
    assert named(events, "sftp.upload_interrupted") == []


def test_an_upload_never_resumed_is_set_aside_and_explained(tmp_path: Path) -> None:
    """After the allowed time, the partial file goes to .bak and the customer is told."""
    site, log = chroot_site(tmp_path, '\ninterrupted_after = "2s"')
    with running(site):
        wait_for(log.exists, 10)
        _send(log, '42]: open "/upload/cut.csv" flags WRITE,CREATE,TRUNCATE mode 0644')
        site.drop_file("cut.csv", users_csv(20)[:200])
        _send(log, '42]: forced close "/upload/cut.csv" bytes read 0 written 200')
        wait_for(lambda: bool(site.outbox()), 20)
        wait_for(
            lambda: (
                site.bak.exists() and any(p.name.endswith(".refused") for p in site.bak.iterdir())
            )
        )
    assert site.users() == {}
    text = site.outbox()[0].read_text()
    assert "The upload of this file was cut off and not resumed within" in text


def test_a_second_service_on_the_same_state_folder_is_refused(tmp_path: Path) -> None:
    """Two services must never share a journal."""
    lock = StateDir(tmp_path / "state").lock()
    try:
        with pytest.raises(AlreadyRunningError, match=f"pid {os.getpid()}"):
            StateDir(tmp_path / "state").lock()
        (tmp_path / "state" / "watcher.lock").unlink()  # the lock is on the folder itself
        with pytest.raises(AlreadyRunningError, match="pid unknown"):
            StateDir(tmp_path / "state").lock()
        site = Site(tmp_path / "site")
        site.config.write_text(
            site.config.read_text().replace(
                'state_dir = "state"', f'state_dir = "{tmp_path / "state"}"'
            )
        )
        result = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert (result.returncode, "another watcher is running" in result.stderr) == (2, True)
        site.drop_file("a.csv", users_csv(1))
        process = site.process("a.csv")
        assert (process.returncode, "drop the files into the folder instead" in process.stderr) == (
            2,
            True,
        )
    finally:
        lock.release()


def test_sigterm_stops_the_service_cleanly(tmp_path: Path) -> None:
    """SIGTERM ends the process with status 0 and a stopped event."""
    site = Site(tmp_path, service=FAST)
    process = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if '"service.started"' in line:
            break
    site.drop_file("a.csv", users_csv(2))
    wait_for(lambda: len(archived(site)) == 1)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert '"service.stopped"' in out


def test_run_once_processes_what_is_ready_and_exits(tmp_path: Path) -> None:
    """--once takes stable files, finishes the batch and exits 0."""
    site = Site(tmp_path, service=FAST)
    site.drop_file("a.csv", users_csv(3))
    site.drop_file("a.csv.filepart", users_csv(3))
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "run", "--once", "--config", str(site.config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert archived(site) == [next(site.bak.glob("a.*.csv")).name]
    assert (site.drop / "a.csv.filepart").exists()


def test_a_schema_edit_is_in_force_within_seconds_whatever_the_rescan_interval(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """With rescans ten minutes apart, an edited schema is loaded within the five-second tick."""
    site, schema = site_with_schema(
        tmp_path, OPSCOM_SCHEMA.read_text(), service='settle_time = 0.5\nrescan_interval = "10m"'
    )
    with running(site):
        wait_for(lambda: bool(named(events, "schema.loaded")), 10)
        document = json.loads(schema.read_text())
        document["version"] = "edited"
        schema.write_text(json.dumps(document))
        wait_for(lambda: bool(named(events, "schema.updated")), 12)
    assert named(events, "schema.updated")[0]["version"] == "edited"


def test_the_last_good_schema_survives_a_restart_with_a_broken_file(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Broken on disk at start: the kept schema is in force, said loudly, and shown in status."""
    site, schema = site_with_schema(tmp_path, OPSCOM_SCHEMA.read_text(), service=FAST)
    with running(site):
        wait_for(lambda: bool(named(events, "schema.loaded")), 10)
    schema.write_text('{"fields": []}')
    with running(site) as service:
        site.drop_file("a.csv", users_csv(2))
        wait_for(lambda: len(archived(site)) == 1)
        wait_for((site.state / "status.json").exists)
        live = json.loads((site.state / "status.json").read_text())["tenants"]["jcu"]
        assert service.schemas.refused("jcu") == [
            "fields: must be a non-empty list of field objects"
        ]
    (kept,) = named(events, "schema.kept")
    assert (kept["version"], kept["problems"]) == (
        json.loads(OPSCOM_SCHEMA.read_text())["version"],
        ["fields: must be a non-empty list of field objects"],
    )
    assert live["schema_on_disk"] == ["fields: must be a non-empty list of field objects"]
    assert live["schema"]["version"] == kept["version"]
    assert len(site.users()) == 2


def test_files_waiting_for_a_valid_schema_say_so_in_the_status(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """No good schema ever loaded: a ready file is shown as blocked, not as settling."""
    site, _schema = site_with_schema(tmp_path, '{"fields": []}', service=FAST)

    def blocked() -> bool:
        path = site.state / "status.json"
        if not path.exists():
            return False
        files = json.loads(path.read_text())["tenants"]["jcu"]["files"]
        return {"name": "a.csv", "state": "blocked: no valid schema"} in files

    with running(site):
        site.drop_file("a.csv", users_csv(2))
        wait_for(lambda: bool(named(events, "batch.no_schema")), 20)
        wait_for(blocked, 10)
    assert archived(site) == []


def test_a_schema_update_applies_from_the_next_batch_and_a_broken_one_is_refused(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """A good schema edit is used for the next file; a broken edit keeps the good one in force."""
    site, schema = site_with_schema(tmp_path, OPSCOM_SCHEMA.read_text(), service=FAST)
    with_nickname = "unique_id,nickname\nN-1,Bee\n"
    with running(site):
        site.drop_file("before.csv", with_nickname)
        wait_for(lambda: len(archived(site)) == 1)
        document = json.loads(schema.read_text())
        document["version"] = "with-nickname"
        document["fields"].append({"name": "nickname", "possibleNames": ["nickname"]})
        schema.write_text(json.dumps(document))
        wait_for(lambda: bool(named(events, "schema.updated")))
        site.drop_file("after.csv", "unique_id,nickname\nN-2,Cee\n")
        wait_for(lambda: len(archived(site)) == 2)
        schema.write_text('{"fields": [{"name": "unique_id", "type": "blob"}]}')
        wait_for(lambda: bool(named(events, "schema.rejected")))
        site.drop_file("still.csv", "unique_id,nickname\nN-3,Dee\n")
        wait_for(lambda: len(archived(site)) == 3)
    (updated,) = named(events, "schema.updated")
    assert (updated["version"], updated["previous"]) == ("with-nickname", "2026-11-22")
    (rejected,) = named(events, "schema.rejected")
    assert rejected["in_force"] == "with-nickname"
    assert rejected["problems"] == [
        "fields[0] 'unique_id'.type: must be one of string, integer, number, boolean, date, any (got 'blob')"
    ]
    assert sorted(site.users()) == ["N-2", "N-3"]
    assert [e["code"] for e in named(events, "file.validated")] == ["header_unknown", None, None]


def test_a_stop_mid_import_says_so_and_the_resumed_batch_counts_from_its_start(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Stopped mid-import: "the service is stopping", not the API; resumed: one duration."""
    with ApiServer(lambda _, __: Reply(delay=0.5)) as api:
        site = Site(tmp_path, api_url=api.url, service=FAST)
        with running(site):
            site.drop_file("users.csv", users_csv(12))
            wait_for(lambda: len(api.ids()) >= 2, 20)
        (stopped,) = named(events, "batch.incomplete")
        assert stopped["reason"] == "stopped: the service is stopping"
        time.sleep(1.0)  # the batch waits, stopped, before the service starts again
        with running(site):
            wait_for(lambda: len(archived(site)) == 1, 30)
    (completed,) = named(events, "batch.completed")
    (file,) = named(events, "file.completed")
    # Both count from when the work began, so they agree; this run was only part of it.
    assert completed["duration"] >= completed["run"] + 1.0
    assert abs(completed["duration"] - file["duration"]) < 2.0


def test_a_file_is_received_when_first_seen_not_when_its_window_closes(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """What the customer waits counts from the upload, the batch window and settling included."""
    site = Site(tmp_path, service=FAST.replace('batch_window = "1s"', 'batch_window = "3s"'))
    with running(site):
        dropped = time.time()
        site.drop_file("users.csv", users_csv(3))
        wait_for(lambda: len(archived(site)) == 1, 30)
    (claimed,) = named(events, "file.claimed")
    (result,) = site.bak.glob("*.result.json")
    received = dt.datetime.fromisoformat(json.loads(result.read_text())["received_at"])
    # Seen within a second of the upload, though claimed after the 3 s window.
    assert abs(received.timestamp() - dropped) < 1.5  # the document keeps whole seconds
    (completed,) = named(events, "file.completed")
    assert completed["duration"] >= 3.0
    assert claimed["file"] == "users.csv"


def test_a_file_in_a_subfolder_is_told_to_the_customer_once(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Not only logged: one notice names it, and the rescans after say nothing more."""
    site = Site(tmp_path, service=FAST)
    (site.drop / "2026").mkdir()
    with running(site):
        (site.drop / "2026" / "users.csv").write_text(users_csv(2))
        wait_for(lambda: len(list(site.outbox())) == 1, 20)
        time.sleep(2 * 2 + 1)  # two rescans more
    (notice,) = site.outbox()
    assert b"User import: 1 file in a subfolder not imported" in notice.read_bytes()
    assert len(named(events, "file.in_subfolder")) == 1
    assert (site.drop / "2026" / "users.csv").exists()  # left where it is
