"""`watcher process` as an operator runs it: real processes, real servers."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import ROOT, Site, require_root, users_csv
from tests.support.apiserver import ApiServer, Reply
from tests.support.smtpserver import SmtpServer
from watcher.cli import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
SAMPLE = (ROOT / "watcher" / "cli" / "samples" / "new-users.csv").read_bytes()


def test_the_embedded_store_imports_reports_and_archives(tmp_path: Path) -> None:
    """Without an API or SMTP: users go to the store, the report to the outbox, the file to .bak."""
    site = Site(tmp_path)
    site.drop_file("new-users.csv", SAMPLE)
    result = site.process("new-users.csv")
    assert result.returncode == EXIT_OK, result.stderr
    assert sorted(site.users()) == ["S-100235", "S-100243", "S-100244"]
    assert site.users()["S-100244"] == (
        {
            "unique_id": "S-100244", "login_source": "OPSCOM", "first_name": "Kofi",
            "last_name": "Mensah", "email": "kofi.mensah@students.example.edu",
            "street": "1 College St", "city": "Toronto", "province": "ON",
            "postal_code": "M5S 1A1", "user_type_id": "5", "date_of_birth": "2000-10-10",
            "student_no": "100244",
        },
        1,
    )  # fmt: skip
    assert not (site.drop / "new-users.csv").exists()
    names = sorted(p.name for p in site.bak.iterdir())
    assert len(names) == 3
    archive = names[0]
    assert names == [archive, f"{archive}.failures.csv", f"{archive}.result.json"]
    assert (site.bak / archive).read_bytes() == SAMPLE
    outcome = json.loads((site.bak / f"{archive}.result.json").read_text())
    assert (outcome["status"], outcome["rows"]) == (
        "partly_imported",
        {"total": 11, "imported": 3, "unchanged": 0, "failed": 8, "pending": 0, "blank": 1},
    )
    assert [r["row"] for r in outcome["failed_rows"]] == [2, 4, 5, 6, 7, 8, 9, 10]
    (message,) = site.outbox()
    assert b"Subject: User import: 8 of 11 users not imported" in message.read_bytes()
    events = [e["event"] for e in site.events(result)]
    assert events == [
        "file.claimed", "file.validated", "file.imported", "mail.queued",
        "file.completed", "batch.completed", "mail.kept_in_outbox",
    ]  # fmt: skip


def test_logs_hold_no_values_from_the_file(tmp_path: Path) -> None:
    """No name, email or other cell value appears in any log line."""
    site = Site(tmp_path)
    site.drop_file("new-users.csv", SAMPLE)
    result = site.process("new-users.csv")
    assert result.returncode == EXIT_OK, result.stderr
    assert "batch.completed" in {e["event"] for e in site.events(result)}
    for value in (
        "Amelia",
        "Okafor",
        "amelia.okafor@students.example.edu",
        "K7L 3N6",
        "S-100234",
        "2004-03-17",
    ):
        assert value not in result.stdout


def test_the_api_receives_each_user_and_failures_are_emailed(tmp_path: Path) -> None:
    """Valid users are POSTed with the token; refusals reach the customer by email."""

    def respond(body: dict[str, Any], _: int) -> Reply:
        if body["unique_id"] == "U-00001":
            return Reply(status=422, body={"errors": ["email already belongs to another user"]})
        if body["unique_id"] == "U-00002":
            return Reply(body={"success": False, "message": "user_type_id 2 does not exist"})
        return Reply()

    with ApiServer(respond) as api, SmtpServer() as smtp:
        site = Site(tmp_path, api_url=api.url, smtp_port=smtp.port)
        site.drop_file("users.csv", users_csv(6, bad_every=5))
        result = site.process("users.csv")
    assert result.returncode == EXIT_OK, result.stderr
    assert sorted(api.ids()) == ["U-00001", "U-00002", "U-00003", "U-00004"]
    assert api.requests[0]["apiToken"] == "tok-jcu"
    assert {r["login_source"] for r in api.requests} == {"OPSCOM"}
    (message,) = smtp.messages
    assert (message["To"], message["From"], message["Reply-To"]) == (
        "registrar@jcu.example",
        "Import Admin <admin@jcu.example>",
        "Import Admin <admin@jcu.example>",
    )
    assert message["Subject"] == "User import: 4 of 6 users not imported"
    (attachment,) = message.iter_attachments()
    lines = attachment.get_content().splitlines()
    assert lines[1:] == [
        'U-00000,Name0,not-an-email,0,2,invalid_email,email,"""email"" is not a valid email address"',
        "U-00001,Name1,u1@jcu.example,1,3,api_rejected,,email already belongs to another user",
        "U-00002,Name2,u2@jcu.example,2,4,api_rejected,,user_type_id 2 does not exist",
        'U-00005,Name5,not-an-email,5,7,invalid_email,email,"""email"" is not a valid email address"',
    ]
    assert site.outbox() == []
    rejected = [e for e in site.events(result) if e["event"] == "import.rejected"]
    assert sorted((e["file"], e["row"], e["tenant"]) for e in rejected) == [
        ("users.csv", 3, "jcu"),
        ("users.csv", 4, "jcu"),
    ]
    assert {e["tenant"] for e in site.events(result) if e["event"].startswith("mail.")} == {"jcu"}


def test_an_api_outage_keeps_rows_pending_until_it_returns(tmp_path: Path) -> None:
    """503 past every retry: exit 3, no email, file kept; the next run finishes it once."""
    down = [True]

    def respond(_: dict[str, Any], __: int) -> Reply:
        return Reply(status=503) if down[0] else Reply()

    with ApiServer(respond) as api, SmtpServer() as smtp:
        site = Site(tmp_path, api_url=api.url, smtp_port=smtp.port)
        site.drop_file("users.csv", users_csv(5))
        first = site.process("users.csv")
        assert first.returncode == EXIT_INCOMPLETE
        assert "batch.incomplete" in [e["event"] for e in site.events(first)]
        assert (site.drop / "users.csv").exists()
        assert (smtp.messages, site.outbox()) == ([], [])
        down[0] = False
        received_before = len(api.requests)
        second = site.process()
        assert second.returncode == EXIT_OK, second.stderr
    succeeded = api.ids()[received_before:]
    assert sorted(succeeded) == [f"U-{i:05d}" for i in range(5)]
    assert not (site.drop / "users.csv").exists()
    assert smtp.messages == []


def test_a_refused_token_stops_without_telling_the_customer(tmp_path: Path) -> None:
    """401: the batch stops, rows stay pending, an alert is logged, nobody is emailed."""
    with (
        ApiServer(lambda _, __: Reply(status=401, body={"error": "bad token"})) as api,
        SmtpServer() as smtp,
    ):
        site = Site(tmp_path, api_url=api.url, smtp_port=smtp.port)
        site.drop_file("users.csv", users_csv(20))
        result = site.process("users.csv")
    assert result.returncode == EXIT_INCOMPLETE
    alerts = [e for e in site.events(result) if e["event"] == "import.auth_failed"]
    assert [a["level"] for a in alerts] == ["critical"]
    assert len(api.requests) <= 4  # only the first request of each worker
    assert (smtp.messages, site.outbox()) == ([], [])
    assert "tok-jcu" not in result.stdout


def test_a_symlink_in_the_batch_is_quarantined_and_explained(tmp_path: Path) -> None:
    """A link to a file outside is never read; the customer is told why."""
    site = Site(tmp_path)
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (site.drop / "evil.csv").symlink_to(secret)
    site.drop_file("users.csv", users_csv(2))
    result = site.process("evil.csv", "users.csv")
    assert result.returncode == EXIT_OK, result.stderr
    refusals = [e for e in site.events(result) if e["event"] == "file.refused"]
    assert [(r["file"], r["kind"]) for r in refusals] == [("evil.csv", "symlink")]
    (message,) = site.outbox()
    text = message.read_text()
    assert "evil.csv" in text
    assert "This is a symbolic link" in text
    moved = [p for p in site.bak.iterdir() if p.name.endswith(".refused")]
    assert len(moved) == 1
    assert moved[0].is_symlink()
    assert "root:x" not in message.read_text() + result.stdout
    assert sorted(site.users()) == ["U-00000", "U-00001"]


def test_an_unreadable_file_is_explained_and_archived(tmp_path: Path) -> None:
    """A spreadsheet saved as .csv fails as a whole with a plain reason."""
    site = Site(tmp_path)
    site.drop_file("report.csv", b"PK\x03\x04" + bytes(100))
    result = site.process("report.csv")
    assert result.returncode == EXIT_OK
    text = site.outbox()[0].read_text()
    assert "Subject: User import: 1 file not imported" in text
    assert "it looks like an Excel workbook" in text
    outcome = json.loads(next(site.bak.glob("*.result.json")).read_text())
    assert (outcome["status"], outcome["file_error"]["code"]) == ("not_imported", "file_binary")


def test_a_clean_file_sends_no_report(tmp_path: Path) -> None:
    """When every user is imported, nobody is emailed."""
    site = Site(tmp_path)
    site.drop_file("users.csv", users_csv(10))
    assert site.process("users.csv").returncode == EXIT_OK
    assert site.outbox() == []
    assert len(site.users()) == 10


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    """An unknown tenant, a file elsewhere, or a bad configuration is exit 2."""
    site = Site(tmp_path)
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("a\n")
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "watcher", "process", *args],
            capture_output=True, text=True, check=False, env=dict(os.environ),
        )  # fmt: skip

    assert run("--config", str(site.config), "--tenant", "nope").returncode == EXIT_USAGE
    wrong = run("--config", str(site.config), "--tenant", "jcu", str(outside))
    assert (wrong.returncode, "is not in the drop folder of jcu" in wrong.stderr) == (
        EXIT_USAGE,
        True,
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[service]\n")
    broken = run("--config", str(bad), "--tenant", "jcu")
    assert broken.returncode == EXIT_USAGE
    assert "service.state_dir: is required" in broken.stderr


def test_names_with_control_bytes_or_at_the_length_limit_complete(tmp_path: Path) -> None:
    """A newline, a byte that is not UTF-8 and a 250-byte name: imported, reported, archived."""
    site = Site(tmp_path)
    names = ["new\nline.csv", os.fsdecode(b"bad\xff.csv"), "n" * 246 + ".csv"]
    for i, name in enumerate(names):
        site.drop_file(name, users_csv(3, bad_every=3, start=10 * i))
    result = site.process(*names)
    assert result.returncode == EXIT_OK, result.stderr
    assert [p.name for p in site.drop.iterdir()] == [".bak"]
    archives = sorted(
        p.name for p in site.bak.iterdir() if p.suffix == ".csv" and ".failures" not in p.name
    )
    assert len(archives) == 3
    for archive in archives:
        assert (site.bak / f"{archive}.failures.csv").exists()
        outcome = json.loads((site.bak / f"{archive}.result.json").read_text())
        assert outcome["rows"]["imported"] == 2
    assert {json.loads((site.bak / f"{a}.result.json").read_text())["file"] for a in archives} == {
        "new\\x0aline.csv", "bad\\xff.csv", "n" * 246 + ".csv",
    }  # fmt: skip
    (message,) = site.outbox()
    text = message.read_bytes()
    assert b'filename="failed-new_line.csv"' in text
    assert b'filename="failed-bad_.csv"' in text
    assert [e["event"] for e in site.events(result)].count("file.completed") == 3
    again = site.process()
    assert again.returncode == EXIT_OK, again.stderr
    assert "batch.completed" not in again.stdout


@pytest.mark.parametrize("command", ["process", "run", "check-config"])
def test_a_journal_that_is_not_a_database_is_one_clear_line(tmp_path: Path, command: str) -> None:
    """A corrupted journal stops each command with one line naming it, not a traceback."""
    site = Site(tmp_path)
    site.state.mkdir()
    (site.state / "journal.sqlite").write_bytes(b"this is not a database" * 100)
    result = subprocess.run(
        [sys.executable, "-m", "watcher", command, "--config", str(site.config), *{"run": ["--once"], "process": ["--tenant", "jcu"]}.get(command, [])],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == EXIT_USAGE
    assert "Traceback" not in result.stderr
    assert f"the journal {site.state / 'journal.sqlite'}" in result.stderr
    assert "restore it from a backup or move it aside" in result.stderr


def test_a_state_folder_that_cannot_be_made_is_one_clear_line(tmp_path: Path) -> None:
    """A state_dir under a plain file: watcher run says so in one line."""
    site = Site(tmp_path)
    (tmp_path / "blocker").write_text("")
    site.config.write_text(
        site.config.read_text().replace('state_dir = "state"', 'state_dir = "blocker/state"')
    )
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "run", "--once", "--config", str(site.config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert (result.returncode, "Traceback" in result.stderr) == (EXIT_USAGE, False)
    assert result.stderr.strip().splitlines() == [
        (
            f"watcher: the state folder {tmp_path / 'blocker' / 'state'} cannot be used (Not a "
            "directory): create it writable by the service's user (systemd's StateDirectory= does)"
        )
    ]


def test_a_report_lists_the_first_ten_thousand_failed_rows_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    """10,050 failing rows: the list holds 10,000, the email and result file say so."""
    site = Site(tmp_path)
    site.drop_file("many.csv", users_csv(10_050, bad_every=1))
    result = site.process("many.csv")
    assert result.returncode == EXIT_OK, result.stderr
    (path,) = site.outbox()
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["Subject"] == "User import: 10,050 of 10,050 users not imported"
    body = message.get_body()
    assert body is not None
    assert "holds the first 10,000 of 10,050; fix those and upload the file again" in (
        body.get_content()
    )
    (attachment,) = message.iter_attachments()
    assert len(attachment.get_content().splitlines()) == 1 + 10_000
    (outcome,) = [json.loads(p.read_text()) for p in site.bak.glob("*.result.json")]
    assert (len(outcome["failed_rows"]), outcome["failed_rows_complete"]) == (10_000, False)
    assert outcome["rows"]["failed"] == 10_050


def test_a_file_over_max_rows_fails_whole_with_its_reason(tmp_path: Path) -> None:
    """With max_rows = 5, a six-row file is not imported and the customer is told why."""
    site = Site(tmp_path, service="max_rows = 5")
    site.drop_file("six.csv", users_csv(6))
    result = site.process("six.csv")
    assert result.returncode == EXIT_OK, result.stderr
    assert site.users() == {}
    (outcome,) = [json.loads(p.read_text()) for p in site.bak.glob("*.result.json")]
    assert outcome["file_error"]["code"] == "file_too_many_rows"


def test_root_may_not_process_a_state_folder_the_service_user_owns(tmp_path: Path) -> None:
    """Run as root on a folder owned by another account: refused, nothing written."""
    require_root("this check")
    site = Site(tmp_path)
    site.state.mkdir()
    os.chown(site.state, 65534, 65534)
    site.drop_file("a.csv", users_csv(2))
    result = site.process("a.csv")
    assert result.returncode == EXIT_USAGE
    assert "not as root" in result.stderr
    assert "(sudo -u nobody watcher process ...)" in result.stderr
    assert list(site.state.iterdir()) == []
    assert (site.drop / "a.csv").exists()


def test_on_a_terminal_process_prints_a_summary_not_log_lines(tmp_path: Path) -> None:
    """Standard output a terminal: one line per batch; --json keeps the JSON lines."""
    site = Site(tmp_path)
    site.drop_file("a.csv", users_csv(4, bad_every=3))
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "watcher", "process", "--config", str(site.config),
             "--tenant", "jcu", str(site.drop / "a.csv")],
            stdout=terminal, stderr=subprocess.PIPE, text=True, check=False, timeout=60,
        )  # fmt: skip
        os.close(terminal)
        terminal = -1
        output = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(controller, 4096):
                output += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert result.returncode == EXIT_OK, result.stderr
    lines = output.decode().replace("\r\n", "\n").splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Batch ")
    assert lines[0].endswith(": 1 file, 4 rows: 2 imported, 2 failed.")
    assert lines[1] == "1 report waiting in the outbox."
    site.drop_file("b.csv", users_csv(1, start=50))
    as_json = site.process("b.csv")
    assert "batch.completed" in {e["event"] for e in site.events(as_json)}
