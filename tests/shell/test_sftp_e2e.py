"""End to end with OpenSSH: a chrooted internal-sftp account, the real sftp client.

sshd refuses a chroot whose path is not root-owned or is writable by group or
others, so the chroot lives under /srv, not /tmp; it refuses locked accounts,
so the test account is unlocked for key-only login. The account and the
folders are created for the test and removed afterwards; this needs root,
which CI has. The service listens on ``<chroot>/dev/log`` for the SFTP
transaction log, as a deployment does.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paramiko
import pytest

from tests.support import OPSCOM_SCHEMA, require, require_sshd, users_csv

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration
USER = "watchere2e"


class Sshd:
    """A running sshd with one chrooted SFTP account."""

    def __init__(self, base: Path, port: int, key: Path) -> None:
        self.base = base
        self.port = port
        self.key = key
        self.chroot = base / "jcu"
        self.upload = self.chroot / "upload"
        self.log_socket = self.chroot / "dev" / "log"

    def sftp(self, commands: list[str], *, limit_kbit: int | None = None) -> subprocess.Popen[str]:
        """Start the sftp client running ``commands`` in batch mode."""
        batch = self.base / f"batch-{uuid.uuid4().hex}"
        batch.write_text("\n".join(commands) + "\n")
        args = [require("sftp"), "-b", str(batch), "-i", str(self.key), "-P", str(self.port),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]  # fmt: skip
        if limit_kbit is not None:
            args += ["-l", str(limit_kbit)]
        return subprocess.Popen(
            [*args, f"{USER}@127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def run_sftp(self, *commands: str) -> None:
        """Run sftp commands and insist they succeed."""
        process = self.sftp(list(commands))
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, (out, err)

    @contextlib.contextmanager
    def paramiko(self) -> Iterator[paramiko.SFTPClient]:
        """An SFTP session through paramiko, whose rename is the standard one."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())  # noqa: S507 - a throwaway loopback server
        client.connect("127.0.0.1", port=self.port, username=USER, key_filename=str(self.key),
                       look_for_keys=False, allow_agent=False)  # fmt: skip
        try:
            yield client.open_sftp()
        finally:
            client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    """Sshd on a loopback port with a chrooted internal-sftp account."""
    sshd_path, keygen = require_sshd(), require("ssh-keygen")
    require("sftp")
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the OpenSSH end-to-end test needs root")
        pytest.skip("the OpenSSH end-to-end test needs root (for chroot and a test account)")
    created = False
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
        )
        created = True
    subprocess.run(["usermod", "-p", "*", USER], check=True)
    base = Path("/srv") / f"watcher-e2e-{uuid.uuid4().hex[:8]}"
    chroot = base / "jcu"
    (chroot / "upload").mkdir(parents=True)
    (chroot / "dev").mkdir()
    (base / "keys").mkdir()
    for folder in (Path("/srv"), base, chroot, chroot / "dev", base / "keys"):
        folder.chmod(0o755)
    shutil.chown(chroot / "upload", user=USER)
    for name in ("host", "client"):
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)], check=True
        )
    shutil.copy(base / "client.pub", base / "keys" / USER)
    (base / "keys" / USER).chmod(0o644)
    port = _free_port()
    config = base / "sshd_config"
    config.write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {base / "host"}
PidFile {base / "sshd.pid"}
AuthorizedKeysFile {base / "keys"}/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
Subsystem sftp internal-sftp
Match User {USER}
    ChrootDirectory {chroot}
    ForceCommand internal-sftp -l INFO -u 0022
    AllowTcpForwarding no
    X11Forwarding no
    PermitTTY no
""")
    subprocess.run([sshd_path, "-t", "-f", str(config)], check=True)
    daemon = subprocess.Popen([sshd_path, "-D", "-e", "-f", str(config)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert time.monotonic() < deadline, "sshd did not start"
        time.sleep(0.1)
    try:
        yield Sshd(base, port, base / "client")
    finally:
        daemon.terminate()
        daemon.wait(10)
        shutil.rmtree(base, ignore_errors=True)
        if created:
            subprocess.run(["userdel", USER], check=False)


class Watcher:
    """`watcher run` on the account's upload folder, its log lines collected."""

    def __init__(self, sshd: Sshd, state: Path, service: str = "") -> None:
        self.state = state
        self.config = state.parent / "watcher.toml"
        self.config.write_text(f"""
[service]
state_dir = "{state}"
{service}
batch_window = "1s"
settle_time = "1s"
rescan_interval = "5s"
interrupted_after = "1h"

[[tenant]]
name = "jcu"
drop_dir = "{sshd.upload}"
sftp_log_socket = "{sshd.log_socket}"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "registrar@jcu.example"
reply_to = "admin@jcu.example"
""")
        self.output = state.parent / "watcher.log"
        self.sink = self.output.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(self.config)],
            stdout=self.sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.wait(lambda: any(e["event"] == "sftp.listening" for e in self.events()))

    def events(self) -> list[dict[str, Any]]:
        """The service's log events so far."""
        return [
            json.loads(line)
            for line in self.output.read_text().splitlines()
            if line.startswith("{")
        ]

    def wait(self, check: Any, timeout: float = 60) -> None:
        """Poll until ``check()`` holds."""
        deadline = time.monotonic() + timeout
        while not check():
            assert self.process.poll() is None, self.output.read_text()[-3000:]
            assert time.monotonic() < deadline, self.output.read_text()[-3000:]
            time.sleep(0.2)

    def completed(self, name: str) -> list[dict[str, Any]]:
        """The file.completed events for ``name``."""
        return [e for e in self.events() if e["event"] == "file.completed" and e["file"] == name]

    def users(self) -> dict[str, int]:
        """The embedded store: key to import count."""
        import sqlite3  # noqa: PLC0415

        path = self.state / "users.sqlite"
        if not path.exists():
            return {}
        with sqlite3.connect(path) as db:
            return dict(db.execute("SELECT key, imports FROM users"))

    def stop(self) -> None:
        """SIGTERM, and insist on a clean exit."""
        self.process.send_signal(signal.SIGTERM)
        try:
            assert self.process.wait(30) == 0
        finally:
            self.sink.close()


@pytest.fixture
def watcher(sshd: Sshd, tmp_path: Path) -> Iterator[Watcher]:
    """The service on the SFTP account's folder; the folder is emptied afterwards."""
    running = Watcher(sshd, tmp_path / "state")
    try:
        yield running
    finally:
        running.stop()
        for entry in sshd.upload.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def test_an_encrypted_put_is_decrypted_in_the_spool_and_imported(
    sshd: Sshd, tmp_path: Path
) -> None:
    """users.csv.pgp over sftp: imported; the folder and .bak hold only ciphertext."""
    gpg = require("gpg")
    keyring = Path(tempfile.mkdtemp(prefix="gpg"))
    keyring.chmod(0o700)
    base = [gpg, "--batch", "--quiet", "--homedir", str(keyring)]
    subprocess.run([*base, "--passphrase", "", "--quick-gen-key", "Import <i@host.example>",
                    "default", "default", "never"], check=True)  # fmt: skip
    local = tmp_path / "users.csv.pgp"
    subprocess.run([*base, "--trust-model", "always", "--recipient", "i@host.example",
                    "--output", str(local), "--encrypt"], input=users_csv(4).encode(),
                   check=True)  # fmt: skip
    running = Watcher(sshd, tmp_path / "state", service=f'gnupg_home = "{keyring}"')
    try:
        sshd.run_sftp(f"put {local} upload/users.csv.pgp")
        running.wait(lambda: running.completed("users.csv.pgp"))
        assert running.users() == dict.fromkeys(ids(4, 0), 1)
        kept = [p for p in (sshd.upload / ".bak").iterdir() if p.name.startswith("users.")]
        assert local.read_bytes() in [p.read_bytes() for p in kept]
        for path in sshd.upload.rglob("*"):
            assert not path.is_file() or b"@jcu.example" not in path.read_bytes(), path
    finally:
        running.stop()
        subprocess.run(["gpgconf", "--homedir", str(keyring), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(keyring, ignore_errors=True)
        for entry in sshd.upload.iterdir():
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def ids(count: int, start: int) -> set[str]:
    """The unique ids users_csv writes."""
    return {f"U-{i:05d}" for i in range(start, start + count)}


def test_a_plain_put_is_imported_once(sshd: Sshd, watcher: Watcher, tmp_path: Path) -> None:
    """Sftp put: imported, archived in the customer's .bak, logged as an SFTP upload."""
    local = tmp_path / "plain.csv"
    local.write_text(users_csv(5))
    sshd.run_sftp(f"put {local} upload/plain.csv")
    watcher.wait(lambda: watcher.completed("plain.csv"))
    assert watcher.users() == dict.fromkeys(ids(5, 0), 1)
    assert next(
        p.name for p in (sshd.upload / ".bak").iterdir() if p.name.endswith(".csv")
    ).startswith("plain.")
    kinds = [
        e["event"]
        for e in watcher.events()
        if e.get("file") == "plain.csv" and e["event"].startswith("sftp.")
    ]
    assert kinds == ["sftp.upload_started", "sftp.upload_finished"]


def test_a_workbook_put_over_sftp_is_imported_from_its_sheet(
    sshd: Sshd, watcher: Watcher, tmp_path: Path
) -> None:
    """users.xlsx as Excel saves it, put with OpenSSH's sftp: its users imported, archived."""
    import openpyxl  # noqa: PLC0415 - only this test writes a workbook

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in users_csv(6, start=300).splitlines():
        sheet.append(row.split(","))
    local = tmp_path / "users.xlsx"
    book.save(local)
    sshd.run_sftp(f"put {local} upload/users.xlsx")
    watcher.wait(lambda: watcher.completed("users.xlsx"))
    assert watcher.users() == dict.fromkeys(ids(6, 300), 1)
    kept = [p for p in (sshd.upload / ".bak").iterdir() if p.name.endswith(".xlsx")]
    assert [p.read_bytes() for p in kept] == [local.read_bytes()]


def test_an_upload_killed_halfway_is_never_imported_until_completed(
    sshd: Sshd, watcher: Watcher, tmp_path: Path
) -> None:
    """A client killed mid-upload leaves a partial file that waits; reput completes it once."""
    local = tmp_path / "big.csv"
    local.write_text(users_csv(20000, start=10000))
    client = sshd.sftp([f"put {local} upload/big.csv"], limit_kbit=1000)
    remote = sshd.upload / "big.csv"
    watcher.wait(lambda: remote.exists() and remote.stat().st_size > 150_000, 30)
    client.kill()
    client.communicate()
    partial = remote.stat().st_size
    assert partial < local.stat().st_size
    watcher.wait(lambda: any(e["event"] == "sftp.upload_interrupted" for e in watcher.events()), 30)
    time.sleep(4)  # far more than the settle time and batch window
    assert watcher.completed("big.csv") == []
    assert watcher.users() == {}
    sshd.run_sftp(f"reput {local} upload/big.csv")
    watcher.wait(lambda: watcher.completed("big.csv"), 120)
    users = watcher.users()
    assert len(users) == 20000
    assert set(users.values()) == {1}


def test_a_filepart_renamed_with_the_standard_rename_is_imported_once(
    sshd: Sshd, watcher: Watcher, tmp_path: Path
) -> None:
    """WinSCP's flow: upload as .filepart, SSH_FXP_RENAME (link + unlink) onto the name."""
    local = tmp_path / "winscp.csv"
    local.write_text(users_csv(4, start=300))
    with sshd.paramiko() as client:
        client.put(str(local), "upload/winscp.csv.filepart")
        time.sleep(2.5)  # the .filepart sits there for longer than a window
        client.rename("upload/winscp.csv.filepart", "upload/winscp.csv")
    watcher.wait(lambda: watcher.completed("winscp.csv"))
    assert watcher.users() == dict.fromkeys(ids(4, 300), 1)
    assert not [
        e
        for e in watcher.events()
        if e.get("file") == "winscp.csv.filepart" and e["event"] == "file.claimed"
    ]


def test_a_posix_rename_is_imported_once(sshd: Sshd, watcher: Watcher, tmp_path: Path) -> None:
    """The sftp CLI's rename (posix-rename@openssh.com) completes the new name."""
    local = tmp_path / "cli.csv"
    local.write_text(users_csv(3, start=400))
    sshd.run_sftp(f"put {local} upload/cli.csv.part", "rename upload/cli.csv.part upload/cli.csv")
    watcher.wait(lambda: watcher.completed("cli.csv"))
    assert watcher.users() == dict.fromkeys(ids(3, 400), 1)


def test_put_p_with_an_old_mtime_is_imported(sshd: Sshd, watcher: Watcher, tmp_path: Path) -> None:
    """Put -p stamps a two-year-old mtime; readiness does not care."""
    local = tmp_path / "old.csv"
    local.write_text(users_csv(3, start=500))
    two_years = time.time() - 2 * 365 * 86400
    os.utime(local, (two_years, two_years))
    sshd.run_sftp(f"put -p {local} upload/old.csv")
    assert (sshd.upload / "old.csv").stat().st_mtime < time.time() - 365 * 86400
    watcher.wait(lambda: watcher.completed("old.csv"))
    assert watcher.users() == dict.fromkeys(ids(3, 500), 1)


def test_a_symlink_to_etc_passwd_is_refused_unread(sshd: Sshd, watcher: Watcher) -> None:
    """Ln -s /etc/passwd: nothing outside the folder is read, the customer is told."""
    sshd.run_sftp("ln -s /etc/passwd upload/evil.csv")
    watcher.wait(lambda: watcher.completed("evil.csv"))
    assert any(e["event"] == "sftp.link_attempt" for e in watcher.events())
    assert [e["kind"] for e in watcher.events() if e["event"] == "file.refused"] == ["symlink"]
    (report,) = (watcher.state / "outbox").glob("*.eml")
    text = report.read_text()
    assert "evil.csv" in text
    assert "This is a symbolic link" in text
    secret = Path("/etc/passwd").read_text().splitlines()[0]
    assert secret not in text + watcher.output.read_text()
    assert watcher.users() == {}


def test_a_file_put_in_check_is_answered_in_seconds_and_never_imported(
    sshd: Sshd, watcher: Watcher, tmp_path: Path
) -> None:
    """Upload into check/: the answer is back over SFTP within seconds; nothing is imported."""
    check = sshd.upload / "check"
    watcher.wait(check.is_dir)
    assert check.stat().st_uid == sshd.upload.stat().st_uid  # the customer's, like upload/
    local = tmp_path / "users.csv"
    local.write_text(users_csv(10, bad_every=5))
    started = time.monotonic()
    sshd.run_sftp(f"put {local} upload/check/users.csv")
    answer = tmp_path / "answer.json"

    def fetched() -> bool:
        client = sshd.sftp([f"get upload/check/users.csv.check.json {answer}"])
        client.communicate(timeout=60)
        return client.returncode == 0

    watcher.wait(fetched, 30)
    elapsed = time.monotonic() - started
    document = json.loads(answer.read_text())
    assert (document["status"], document["rows"]) == (
        "would_partly_fail",
        {"total": 10, "valid": 8, "failed": 2, "blank": 0},
    )
    assert elapsed < 15, elapsed
    assert [r["row"] for r in document["failed_rows"]] == [2, 7]
    watcher.wait(lambda: (check / ".bak").is_dir() and any((check / ".bak").iterdir()))
    assert not (check / "users.csv").exists()
    assert (check / "users.csv.check.csv").exists()
    assert watcher.users() == {}
    assert not any(e["event"] in ("file.claimed", "batch.completed") for e in watcher.events())
    watcher.wait(lambda: any((watcher.state / "outbox").glob("check-*.eml")))
    (message,) = (watcher.state / "outbox").glob("check-*.eml")
    assert "Subject: Check of users.csv: 2 of 10 rows would fail" in message.read_text()
