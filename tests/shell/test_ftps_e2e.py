"""End to end with vsftpd: a tenant onboarded for FTPS, uploads over explicit TLS.

vsftpd runs on a loopback port with the configuration and PAM file from
``deploy/vsftpd/`` (only ports, paths and names changed), a certificate made
for the test, and its transfer log where the service reads it. The tenant is
made by ``watcher tenant add --protocol ftps``; the service runs against a
loopback API and SMTP server; the client is Python's ``ftplib.FTP_TLS`` with
``prot_p()``. Needs root (accounts, chroot, PAM), as CI has.
"""

from __future__ import annotations

import contextlib
import ftplib
import grp
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import OPSCOM_SCHEMA, ROOT, require, require_root, users_csv
from tests.support.apiserver import ApiServer
from tests.support.smtpserver import SmtpServer, free_port, make_certificate

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.integration
TENANT = "uiwftps"
PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - a test account's


class Reusing(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session.

    vsftpd's ``require_ssl_reuse`` asks for it (as FileZilla and lftp do);
    the standard library's client does not do it by itself.
    """

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        """Open the data connection, its TLS resuming the control connection's session."""
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 - TLS follows
        control = self.sock
        if self._prot_p and isinstance(control, ssl.SSLSocket):  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=control.session
            )
        return conn, size


class Host:
    """vsftpd, the onboarded tenant and the service, with what they wrote."""

    def __init__(self, base: Path, port: int, cert: Path, api: ApiServer) -> None:
        self.base = base
        self.port = port
        self.cert = cert
        self.api = api
        self.upload = base / "sftp" / TENANT / "upload"
        self.output = base / "watcher.log"
        self.process: subprocess.Popen[bytes] | None = None

    def client(self, *, password: str = PASSWORD) -> Reusing:
        """A logged-in FTPS session with protected data connections."""
        context = ssl.create_default_context(cafile=str(self.cert))
        ftp = Reusing(context=context, timeout=20)
        ftp.connect("127.0.0.1", self.port)
        try:
            ftp.auth()
            ftp.login(TENANT, password)
            ftp.prot_p()
        except ftplib.Error:
            ftp.close()
            raise
        return ftp

    def put(self, name: str, data: bytes) -> None:
        """Upload ``data`` whole as ``name``."""
        ftp = self.client()
        try:
            ftp.storbinary(f"STOR {name}", io.BytesIO(data))
        finally:
            ftp.quit()

    def cut(self, name: str, data: bytes, *, rest: int | None = None) -> None:
        """Send half of ``data`` and drop the connections without a TLS shutdown."""
        ftp = self.client()
        ftp.voidcmd("TYPE I")
        conn, _ = ftp.ntransfercmd(f"STOR {name}", rest)
        conn.sendall(data[: len(data) // 2])
        time.sleep(0.5)
        conn.close()  # no unwrap: the TLS session just stops, as when a client dies
        ftp.close()

    def events(self) -> list[dict[str, Any]]:
        """The service's log events so far."""
        return [
            json.loads(line)
            for line in self.output.read_text().splitlines()
            if line.startswith("{")
        ]

    def wait(self, check: Callable[[], bool], timeout: float = 60) -> None:
        """Poll until ``check()`` holds, the service still running."""
        deadline = time.monotonic() + timeout
        while not check():
            assert self.process is None or self.process.poll() is None, self.tail()
            assert time.monotonic() < deadline, self.tail()
            time.sleep(0.2)

    def tail(self) -> str:
        """The end of the service's log, for a failing assertion."""
        ours = self.output.read_text()[-4000:] if self.output.exists() else ""
        return ours + "\n--- vsftpd:\n" + (self.base / "ftps.log").read_text()[-2000:]

    def completed(self, name: str) -> list[dict[str, Any]]:
        """The service's file.completed events for ``name``."""
        return [e for e in self.events() if e["event"] == "file.completed" and e["file"] == name]

    def imported(self) -> dict[str, int]:
        """How many times the API was sent each user."""
        counts: dict[str, int] = {}
        for body in self.api.requests:
            counts[body["unique_id"]] = counts.get(body["unique_id"], 0) + 1
        return counts


def _vsftpd_config(base: Path, port: int, cert: Path, key: Path, pam: str) -> str:
    """deploy/vsftpd/vsftpd.conf with the test's ports, paths and PAM service."""
    text = (ROOT / "deploy" / "vsftpd" / "vsftpd.conf").read_text()
    passive = 40000 + int.from_bytes(os.urandom(2), "big") % 20000
    overrides = {
        "listen_port": str(port),
        "userlist_file": str(base / "etc" / "ftps-users"),
        "pam_service_name": pam,
        "rsa_cert_file": str(cert),
        "rsa_private_key_file": str(key),
        "pasv_min_port": str(passive),
        "pasv_max_port": str(passive + 20),
        "vsftpd_log_file": str(base / "ftps.log"),
    }
    for option, value in overrides.items():
        text, count = re.subn(rf"^{option}=.*$", f"{option}={value}", text, flags=re.MULTILINE)
        assert count == 1, option
    return text + "listen_address=127.0.0.1\n"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    """The deploy configuration's vsftpd on loopback, with an API and an SMTP server."""
    require_root("the FTPS end-to-end test")
    vsftpd = require("vsftpd")
    require("chpasswd")
    base = Path("/srv") / f"uiw-ftps-{uuid.uuid4().hex[:8]}"
    pam = f"uiw-ftps-{uuid.uuid4().hex[:8]}"
    pam_file = Path("/etc/pam.d") / pam
    (base / "etc" / "schema").mkdir(parents=True)
    for folder in (Path("/srv"), base):
        folder.chmod(0o755)
    shutil.copy(OPSCOM_SCHEMA, base / "etc" / "schema" / "opscom-users.json")
    Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(base)
    port = free_port()
    pam_file.write_text(
        (ROOT / "deploy" / "vsftpd" / "pam.d" / "user-import-ftps")
        .read_text()
        .replace("/etc/user-import/ftps-users", str(base / "etc" / "ftps-users"))
    )
    (base / "vsftpd.conf").write_text(_vsftpd_config(base, port, cert, key, pam))
    (base / "ftps.log").touch(mode=0o640)
    daemon = None
    try:
        with ApiServer() as api, SmtpServer() as smtp:
            (base / "token").write_text("t0ken\n")
            (base / "token").chmod(0o600)
            (base / "etc" / "watcher.toml").write_text(f"""
include = ["tenants.d/*.toml"]
[service]
state_dir = "{base / "state"}"
batch_window = "1s"
settle_time = "1s"
rescan_interval = "5s"
interrupted_after = "1h"
ftps_log = "{base / "ftps.log"}"
[email]
host = "127.0.0.1"
port = {smtp.port}
""")
            daemon = subprocess.Popen(
                [vsftpd, str(base / "vsftpd.conf")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                assert daemon.poll() is None, "vsftpd refused its configuration"
                assert time.monotonic() < deadline, "vsftpd did not start"
                time.sleep(0.1)
            yield Host(base, port, cert, api)
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(10)
        pam_file.unlink(missing_ok=True)
        with contextlib.suppress(KeyError):
            pwd.getpwnam(TENANT)
            subprocess.run(["userdel", TENANT], check=False)
        shutil.rmtree(base, ignore_errors=True)


def _watcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args], capture_output=True, text=True, check=False,
        cwd=ROOT, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def onboarded(host: Host) -> Iterator[Host]:
    """The tenant made by ``watcher tenant add --protocol ftps``, and the service running."""
    base = host.base
    (base / "password").write_text(PASSWORD + "\n")
    added = _watcher(
        "tenant", "add", TENANT, "--protocol", "ftps", "--password-file",
        str(base / "password"), "--failed-import-email", "registrar@uiw.example",
        "--reply-to", "admin@uiw.example", "--api-url", host.api.url,
        "--token-file", str(base / "token"), "--config", str(base / "etc" / "watcher.toml"),
        "--sftp-root", str(base / "sftp"), "--keys-dir", str(base / "keys"),
        "--service-user", "root",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    sink = host.output.open("w")
    host.process = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run", "--config", str(base / "etc" / "watcher.toml")],
        stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT,
    )  # fmt: skip
    try:
        host.wait(lambda: any(e["event"] == "ftps.log_followed" for e in host.events()))
        yield host
    finally:
        host.process.send_signal(signal.SIGTERM)
        try:
            assert host.process.wait(30) == 0
        finally:
            sink.close()


def test_onboarding_makes_an_ftps_account_with_a_hashed_password(onboarded: Host) -> None:
    """The account: vsftpd's chroot in its home, on the allowed list, the password only hashed."""
    base = onboarded.base
    account = pwd.getpwnam(TENANT)
    assert account.pw_dir == f"{base / 'sftp' / TENANT}/./upload"
    assert account.pw_shell == "/usr/sbin/nologin"
    shadow = next(
        line.split(":")[1]
        for line in Path("/etc/shadow").read_text().splitlines()
        if line.startswith(f"{TENANT}:")
    )
    assert shadow.startswith("$")
    assert PASSWORD not in Path("/etc/shadow").read_text()
    assert (base / "etc" / "ftps-users").read_text() == f"{TENANT}\n"
    config = (base / "etc" / "tenants.d" / f"{TENANT}.toml").read_text()
    assert f'ftps_user = "{TENANT}"' in config
    assert "sftp_log_socket" not in config
    assert not (base / "keys" / TENANT).exists()


def test_a_complete_upload_is_imported_once_and_archived(onboarded: Host) -> None:
    """STOR over TLS: finished by vsftpd's OK UPLOAD, imported once, the archive the service's."""
    ftp = onboarded.client()
    assert ftp.pwd() == "/upload"  # lands in the drop folder
    ftp.storbinary("STOR whole.csv", io.BytesIO(users_csv(5).encode()))
    ftp.quit()
    onboarded.wait(lambda: bool(onboarded.completed("whole.csv")))
    assert {k: v for k, v in onboarded.imported().items() if k < "U-00005"} == dict.fromkeys(
        [f"U-{i:05d}" for i in range(5)], 1
    )
    finished = [e for e in onboarded.events() if e["event"] == "ftps.upload_finished"]
    assert [(e["file"], e["tenant"]) for e in finished if e["file"] == "whole.csv"] == [
        ("whole.csv", TENANT)
    ]
    (archive,) = (onboarded.upload / ".bak").glob("whole.*.csv")
    assert archive.stat().st_uid == os.geteuid()  # the service's copy, not the customer's file


def test_an_upload_cut_halfway_is_held_then_the_complete_one_is_imported_once(
    onboarded: Host,
) -> None:
    """A data connection dropped mid-file: FAIL UPLOAD holds it; a whole upload imports it once."""
    data = users_csv(3000, start=10000).encode()
    onboarded.cut("cut.csv", data)
    onboarded.wait(lambda: any(
        e["event"] == "ftps.upload_failed" and e["file"] == "cut.csv" for e in onboarded.events()
    ))  # fmt: skip
    partial = (onboarded.upload / "cut.csv").stat().st_size
    assert 0 < partial < len(data)
    time.sleep(4)  # far more than the settle time and the batch window
    assert onboarded.completed("cut.csv") == []
    assert not any(k >= "U-10000" and k < "U-30000" for k in onboarded.imported())
    onboarded.put("cut.csv", data)
    onboarded.wait(lambda: bool(onboarded.completed("cut.csv")), 120)
    sent = {k: v for k, v in onboarded.imported().items() if "U-10000" <= k < "U-30000"}
    assert len(sent) == 3000
    assert set(sent.values()) == {1}


def test_a_resumed_upload_completes_the_file(onboarded: Host) -> None:
    """Cut, then REST + STOR of the rest: the OK UPLOAD of the resumed part completes it."""
    data = users_csv(2000, start=40000).encode()
    onboarded.cut("resumed.csv", data)
    onboarded.wait(lambda: any(
        e["event"] == "ftps.upload_failed" and e["file"] == "resumed.csv"
        for e in onboarded.events()
    ))  # fmt: skip
    ftp = onboarded.client()
    size = ftp.size("resumed.csv")
    assert size is not None
    ftp.storbinary("STOR resumed.csv", io.BytesIO(data[size:]), rest=size)
    ftp.quit()
    onboarded.wait(lambda: bool(onboarded.completed("resumed.csv")), 60)
    (done,) = onboarded.completed("resumed.csv")
    assert (done["rows"], done["imported"], done["failed"]) == (2000, 2000, 0)


def test_a_plain_ftp_login_and_a_wrong_password_are_refused(onboarded: Host) -> None:
    """No TLS, no login; a wrong password is logged for the tenant."""
    plain = ftplib.FTP(timeout=20)  # noqa: S321 - the point: plain FTP is refused
    plain.connect("127.0.0.1", onboarded.port)
    with pytest.raises(ftplib.error_perm, match="530 Non-anonymous sessions must use encryption"):
        plain.login(TENANT, PASSWORD)
    plain.close()
    with pytest.raises(ftplib.error_perm, match="530"):
        onboarded.client(password="not-the-password")  # noqa: S106
    onboarded.wait(lambda: any(e["event"] == "ftps.login_failed" for e in onboarded.events()))


def test_the_customer_stays_inside_the_folder(onboarded: Host) -> None:
    """CWD .. reaches only the chroot; STOR ../x.csv and /x.csv are refused; nothing lands outside."""
    ftp = onboarded.client()
    ftp.cwd("..")
    assert ftp.pwd() == "/"
    assert sorted(ftp.nlst()) == ["dev", "upload"]  # the chroot, not the host
    for target in ("../x.csv", "/x.csv", "/upload/../x.csv", "../../x.csv"):
        with pytest.raises(ftplib.error_perm, match="553"):
            ftp.storbinary(f"STOR {target}", io.BytesIO(b"unique_id\nX\n"))
    ftp.quit()
    assert not list(onboarded.base.rglob("x.csv"))


def test_history_in_bak_cannot_be_changed_by_the_customer(onboarded: Host) -> None:
    """The archive is the service's: the customer cannot overwrite or delete it; a .bak of theirs is set aside."""
    onboarded.put("history.csv", users_csv(2, start=50000).encode())
    onboarded.wait(lambda: bool(onboarded.completed("history.csv")))
    (archive,) = (onboarded.upload / ".bak").glob("history.*.csv")
    before = archive.read_bytes()
    ftp = onboarded.client()
    with pytest.raises(ftplib.error_perm, match="553"):
        ftp.storbinary(f"STOR .bak/{archive.name}", io.BytesIO(b"unique_id\nFORGED\n"))
    with pytest.raises(ftplib.error_perm, match="550"):
        ftp.delete(f".bak/{archive.name}")
    # The customer may move the service's folder away and make one of their own...
    ftp.rename(".bak", "mine")
    ftp.mkd(".bak")
    ftp.storbinary("STOR .bak/planted.csv", io.BytesIO(b"unique_id\nPLANTED\n"))
    ftp.quit()
    assert (onboarded.upload / "mine" / archive.name).read_bytes() == before
    # ...which the service sets aside before it archives anything into it.
    onboarded.put("after.csv", users_csv(2, start=50100).encode())
    onboarded.wait(lambda: bool(onboarded.completed("after.csv")))
    bak = onboarded.upload / ".bak"
    assert bak.stat().st_uid == os.geteuid()
    assert list(bak.glob("after.*.csv"))
    assert not (bak / "planted.csv").exists()
    (aside,) = onboarded.upload.glob(".bak.not-ours.*")
    assert (aside / "planted.csv").exists()


def test_an_sftp_tenant_is_given_ftps_and_removed(onboarded: Host) -> None:
    """``tenant ftps`` on an SFTP tenant: a password shown once, FTPS login; remove ends it."""
    base, other = onboarded.base, "uiwboth"
    subprocess.run(
        [require("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(base / "other")],
        check=True,
    )
    try:
        grp.getgrnam("sftp-import")
        group_made = False
    except KeyError:
        group_made = True
    where = ["--config", str(base / "etc" / "watcher.toml"), "--sftp-root", str(base / "sftp"),
             "--keys-dir", str(base / "keys"), "--service-user", "root"]  # fmt: skip
    try:
        added = _watcher("tenant", "add", other, "--key", str(base / "other.pub"),
                         "--failed-import-email", "r@uiw.example", "--reply-to", "a@uiw.example",
                         *where)  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "FTPS" not in added.stdout
        opened = _watcher("tenant", "ftps", other, *where)
        assert opened.returncode == 0, opened.stderr
        (password,) = re.findall(r"kept only as a hash\): (\S+)$", opened.stdout, re.MULTILINE)
        assert len(password) >= 20
        config = (base / "etc" / "tenants.d" / f"{other}.toml").read_text()
        assert f'ftps_user = "{other}"' in config
        assert "sftp_log_socket" in config  # still an SFTP tenant
        context = ssl.create_default_context(cafile=str(onboarded.cert))
        ftp = Reusing(context=context, timeout=20)
        ftp.connect("127.0.0.1", onboarded.port)
        ftp.auth()
        ftp.login(other, password)
        assert ftp.pwd() == "/upload"
        ftp.quit()
        removed = _watcher("tenant", "remove", other, "--purge", *where)
        assert removed.returncode == 0, removed.stderr
        assert other not in (base / "etc" / "ftps-users").read_text().split()
        refused = Reusing(context=context, timeout=20)
        refused.connect("127.0.0.1", onboarded.port)
        refused.auth()
        with pytest.raises(ftplib.error_perm, match="530"):
            refused.login(other, password)
        refused.close()
    finally:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(other)
            subprocess.run(["userdel", other], check=False)
        if group_made:
            subprocess.run(["groupdel", "sftp-import"], check=False)


def test_a_client_that_does_not_reuse_the_tls_session_leaves_no_empty_upload(
    onboarded: Host,
) -> None:
    """A data connection refused leaves a 0-byte file: held, not "empty"; a retry is imported."""
    context = ssl.create_default_context(cafile=str(onboarded.cert))
    # The standard library's client, which does not reuse the TLS session.
    plain = ftplib.FTP_TLS(context=context, timeout=20)  # noqa: S321 - TLS, as the test needs
    try:
        plain.connect("127.0.0.1", onboarded.port)
        plain.auth()
        plain.login(TENANT, PASSWORD)
        plain.prot_p()
        with pytest.raises((ftplib.error_perm, EOFError, OSError)):
            plain.storbinary("STOR noreuse.csv", io.BytesIO(users_csv(4, start=60000).encode()))
    finally:
        plain.close()
    assert (onboarded.upload / "noreuse.csv").stat().st_size == 0
    time.sleep(4)  # far more than the settle time and the batch window
    assert onboarded.completed("noreuse.csv") == []  # not taken for an empty file
    onboarded.put("noreuse.csv", users_csv(4, start=60000).encode())
    onboarded.wait(lambda: bool(onboarded.completed("noreuse.csv")), 60)
    (done,) = onboarded.completed("noreuse.csv")
    assert (done["imported"], done["code"]) == (4, None)
