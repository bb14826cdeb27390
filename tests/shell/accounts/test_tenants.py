"""Onboarding a tenant for real, then an SFTP upload the unprivileged service imports.

Installs the project into a venv on the system's Python (as a deployment
does), creates the service account, runs `watcher tenant add` (a real SFTP
account, chroot, key and configuration), starts sshd with the snippet from
deploy/, runs the service as its own user, and uploads with the sftp client.
Then `watcher tenant remove --purge` undoes it. Needs root, as CI has.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import OPSCOM_SCHEMA, ROOT, require, require_root, require_sshd, users_csv

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.integration
TENANT = "uiwtest"
SERVICE = "user-import"
GROUP = "sftp-import"


def _python_for_everyone() -> str:
    """A Python 3.11+ that a user other than root may run."""
    for candidate in (
        "/usr/bin/python3.13",
        "/usr/bin/python3.12",
        "/usr/bin/python3.11",
        "/usr/bin/python3",
    ):
        path = Path(candidate)
        if path.exists() and path.stat().st_mode & stat.S_IXOTH:
            version = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 11))"],
                                     capture_output=True, text=True, check=False)  # fmt: skip
            if version.stdout.strip() == "True":
                return candidate
    if os.environ.get("CI") == "true":
        pytest.fail(
            "no system Python 3.11+ for the service account; .ci/run should install python3"
        )
    pytest.skip("no system Python 3.11+ that a service account may run")


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _run(*command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    return result


@contextlib.contextmanager
def _account(kind: str, name: str, *create: str) -> Iterator[None]:
    """Make sure a user or group exists for the test; remove it after if the test made it."""
    lookup = pwd.getpwnam if kind == "user" else grp.getgrnam
    try:
        lookup(name)
        made = False
    except KeyError:
        _run(*create)
        made = True
    try:
        yield
    finally:
        if made:
            subprocess.run(["userdel" if kind == "user" else "groupdel", name], check=False)


@pytest.fixture(scope="module")
def host() -> Iterator[dict[str, Path]]:
    """A host with the project installed for the service account, and sshd running."""
    require_root("onboarding")
    sshd, keygen, uv = require_sshd(), require("ssh-keygen"), require("uv")
    require("setpriv")
    require("sftp")
    python = _python_for_everyone()
    base = Path("/srv") / f"uiw-{uuid.uuid4().hex[:8]}"
    (base / "etc" / "schema").mkdir(parents=True)
    for folder in (Path("/srv"), base, base / "etc", base / "etc" / "schema"):
        folder.chmod(0o755)
    with (
        _account("group", GROUP, "groupadd", "--system", GROUP),
        _account(
            "user",
            SERVICE,
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE,
        ),
    ):
        try:
            venv = base / "venv"
            _run(uv, "venv", "--quiet", "--python", python, str(venv))
            _run(
                uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(ROOT)
            )
            shutil.copy(OPSCOM_SCHEMA, base / "etc" / "schema" / "opscom-users.json")
            state = base / "state"
            state.mkdir()
            shutil.chown(state, user=SERVICE, group=SERVICE)
            (base / "etc" / "watcher.toml").write_text(f"""
include = ["tenants.d/*.toml"]
[service]
state_dir = "{state}"
batch_window = "1s"
settle_time = "1s"
""")
            _run(keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(base / "client"))
            _run(keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host"))
            snippet = (ROOT / "deploy" / "sshd_config.d" / "user-import.conf").read_text()
            snippet = snippet.replace("/srv/sftp/%u", f"{base / 'sftp'}/%u").replace(
                "/etc/ssh/authorized_keys/%u", f"{base / 'keys'}/%u"
            )
            (base / "snippet.conf").write_text(snippet)
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            (base / "sshd_config").write_text(
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host'}\nPidFile {base / 'sshd.pid'}\n"
                f"UsePAM no\nSubsystem sftp internal-sftp\nInclude {base / 'snippet.conf'}\n"
            )
            daemon = subprocess.Popen(
                [sshd, "-D", "-e", "-f", str(base / "sshd_config")], stderr=subprocess.DEVNULL
            )
            try:
                deadline = time.monotonic() + 10
                while not _listening(port):
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
                yield {"base": base, "venv": venv, "port": Path(str(port))}
            finally:
                daemon.terminate()
                daemon.wait(10)
        finally:
            with contextlib.suppress(KeyError):
                pwd.getpwnam(TENANT)
                subprocess.run(["userdel", TENANT], check=False)
            shutil.rmtree(base, ignore_errors=True)


def watcher(host: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed watcher command as root."""
    host["base"]
    return _run(str(host["venv"] / "bin" / "watcher"), *args)


def layout(host: dict[str, Path]) -> list[str]:
    """The layout options pointing at the test's folders."""
    base = host["base"]
    return ["--config", str(base / "etc" / "watcher.toml"), "--sftp-root", str(base / "sftp"),
            "--keys-dir", str(base / "keys"), "--group", GROUP, "--service-user", SERVICE]  # fmt: skip


def sftp(host: dict[str, Path], *commands: str) -> subprocess.CompletedProcess[str]:
    """Run sftp commands as the tenant, in batch mode."""
    base = host["base"]
    batch = base / f"batch-{uuid.uuid4().hex}"
    batch.write_text("\n".join(commands) + "\n")
    return _run(require("sftp"), "-b", str(batch), "-i", str(base / "client"), "-P", str(host["port"]),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", f"{TENANT}@127.0.0.1")  # fmt: skip


def test_a_tenant_is_onboarded_served_and_removed(host: dict[str, Path], tmp_path: Path) -> None:
    """Tenant add to a running service, an upload it imports, the customer reads .bak, remove.

    The service runs unprivileged from before the tenant exists: `watcher tenant
    add` and SIGHUP (systemctl reload) bring the tenant in, no restart.
    """
    base = host["base"]
    log = tmp_path / "service.log"
    with log.open("w") as out:
        service = subprocess.Popen(
            # setpriv changes user and execs: the process is the service itself.
            ["setpriv", f"--reuid={SERVICE}", f"--regid={SERVICE}", "--init-groups", "--",
             str(host["venv"] / "bin" / "watcher"), "run", "--config", str(base / "etc" / "watcher.toml")],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _served(host, tmp_path, service, log)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    import sqlite3  # noqa: PLC0415

    with sqlite3.connect(base / "state" / "users.sqlite") as db:
        assert (
            db.execute("SELECT COUNT(*) FROM users WHERE tenant = ?", (TENANT,)).fetchone()[0] == 5
        )

    removed = watcher(host, "tenant", "remove", TENANT, "--purge", *layout(host))
    assert "removed the account uiwtest" in removed.stdout
    with pytest.raises(KeyError):
        pwd.getpwnam(TENANT)
    chroot = base / "sftp" / TENANT
    assert not chroot.exists()
    assert not (base / "etc" / "tenants.d" / f"{TENANT}.toml").exists()


def _served(
    host: dict[str, Path], tmp_path: Path, service: subprocess.Popen[bytes], log: Path
) -> None:
    """A tenant added to the running service, served over SFTP; the service stopped after."""
    base = host["base"]

    def events() -> list[dict[str, Any]]:
        return [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]

    def wait(check: Any) -> None:
        deadline = time.monotonic() + 60
        while not check():
            assert service.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

    wait(lambda: any(e["event"] == "service.started" for e in events()))
    added = watcher(host, "tenant", "add", TENANT, "--key", str(base / "client.pub"),
                    "--failed-import-email", "registrar@uiw.example", "--reply-to", "admin@uiw.example",
                    *layout(host))  # fmt: skip
    assert "created the SFTP account uiwtest" in added.stdout
    assert "The running service applies it within 60 seconds" in added.stdout
    chroot, upload = base / "sftp" / TENANT, base / "sftp" / TENANT / "upload"
    assert (chroot.stat().st_uid, stat.S_IMODE(chroot.stat().st_mode)) == (0, 0o755)
    assert stat.S_IMODE(upload.stat().st_mode) == 0o2770
    assert (
        pwd.getpwuid(upload.stat().st_uid).pw_name,
        grp.getgrgid(upload.stat().st_gid).gr_name,
    ) == (TENANT, SERVICE)
    watcher(host, "check-config", "--config", str(base / "etc" / "watcher.toml"))
    service.send_signal(signal.SIGHUP)  # systemctl reload
    wait(lambda: any(e["event"] == "tenant.added" for e in events()))
    wait(lambda: any(e["event"] == "sftp.listening" for e in events()))
    local = tmp_path / "users.csv"
    local.write_text(users_csv(5))
    sftp(host, f"put {local} users.csv", "-ln -s /etc/passwd evil.csv")
    wait(lambda: any(e["event"] == "file.completed" for e in events()))
    assert not (upload / "evil.csv").exists()
    assert not (upload / "evil.csv").is_symlink()
    result_name = next(
        p.name for p in (upload / ".bak").iterdir() if p.name.endswith(".result.json")
    )
    fetched = tmp_path / "result.json"
    sftp(host, f"get .bak/{result_name} {fetched}")
    assert json.loads(fetched.read_text())["rows"]["imported"] == 5

    answered = _check_lane(host, upload / "check", tmp_path, events, wait)
    assert json.loads(answered.read_text())["rows"]["failed"] == 1
    service.send_signal(signal.SIGTERM)
    assert service.wait(30) == 0


def _check_lane(
    host: dict[str, Path],
    check: Path,
    tmp_path: Path,
    events: Callable[[], list[dict[str, Any]]],
    wait: Callable[[Callable[[], bool]], None],
) -> Path:
    """Onboarding's check folder, made again by the unprivileged service; a check's answer."""
    assert (pwd.getpwuid(check.stat().st_uid).pw_name, stat.S_IMODE(check.stat().st_mode)) == (
        TENANT,
        0o2770,
    )
    # A tenant onboarded before the check lane: the unprivileged service makes the
    # folder, its own, and gives the customer the drop folder's rights through an ACL.
    shutil.rmtree(check)
    wait(lambda: any(e["event"] == "check.folder_made" for e in events()))
    assert pwd.getpwuid(check.stat().st_uid).pw_name == SERVICE
    trial = tmp_path / "trial.csv"
    trial.write_text(users_csv(3, bad_every=3))
    sftp(host, f"put {trial} check/trial.csv")
    wait(lambda: any(e["event"] == "check.answered" for e in events()))
    answer = tmp_path / "answer.json"
    sftp(host, f"get check/trial.csv.check.json {answer}")
    return answer


def test_a_removed_tenants_kept_folders_are_nobody_elses(host: dict[str, Path]) -> None:
    """Remove without --purge: nothing under the chroot keeps the old uid or access for others."""
    base = host["base"]
    # The service keeps a key pair for encrypted uploads: adding a tenant prints its public half.
    keyring = base / "gnupg"
    keyring.mkdir(mode=0o700)
    _run(require("gpg"), "--batch", "--quiet", "--homedir", str(keyring), "--passphrase", "",
         "--quick-gen-key", "Import <import@uiw.example>", "default", "default", "never")  # fmt: skip
    config = base / "etc" / "watcher.toml"
    config.write_text(config.read_text() + f'gnupg_home = "{keyring}"\n')
    try:
        added = watcher(host, "tenant", "add", TENANT, "--key", str(base / "client.pub"),
                        "--failed-import-email", "registrar@uiw.example",
                        "--reply-to", "admin@uiw.example", *layout(host))  # fmt: skip
    finally:
        subprocess.run(["gpgconf", "--homedir", str(keyring), "--kill", "gpg-agent"], check=False)
    assert "For the customer, to encrypt uploads to" in added.stdout
    assert "-----BEGIN PGP PUBLIC KEY BLOCK-----" in added.stdout
    assert "[GNUPG:]" not in added.stdout  # the key alone, no status lines
    uid = pwd.getpwnam(TENANT).pw_uid
    chroot, upload = base / "sftp" / TENANT, base / "sftp" / TENANT / "upload"
    (upload / ".bak").mkdir()
    for path in (upload / "users.csv", upload / ".bak" / "old.csv"):
        path.write_text("unique_id\nU-1\n")
        os.chown(path, uid, -1)
        path.chmod(0o644)
    (upload / "link.csv").symlink_to("/etc/passwd")
    os.lchown(upload / "link.csv", uid, -1)
    try:
        removed = watcher(host, "tenant", "remove", TENANT, *layout(host))
        assert f"kept {chroot}, now owned by root with no access for other accounts" in (
            removed.stdout
        )
        entries = [chroot, *chroot.rglob("*")]
        assert [p for p in entries if p.lstat().st_uid == uid] == []
        assert [p for p in entries if not p.is_symlink() and p.lstat().st_mode & 0o007] == []
        assert Path("/etc/passwd").stat().st_uid == 0  # the link was not followed
        assert (upload / "users.csv").read_text() == "unique_id\nU-1\n"
    finally:
        watcher(host, "tenant", "remove", TENANT, "--purge", *layout(host))


OTHER = "uiwother"


class _Running:
    """``watcher run`` as the service account, its JSON log in a file."""

    def __init__(self, host: dict[str, Path], log: Path) -> None:
        self.host, self.log = host, log
        self.log.touch()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        base = self.host["base"]
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                ["setpriv", f"--reuid={SERVICE}", f"--regid={SERVICE}", "--init-groups", "--",
                 str(self.host["venv"] / "bin" / "watcher"), "run",
                 "--config", str(base / "etc" / "watcher.toml")],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = [json.loads(x) for x in self.log.read_text().splitlines() if x.startswith("{")]
        return [e for e in lines if e["event"] == name]

    def wait(self, check: Callable[[], bool]) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while not check():
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def stop(self) -> float:
        """SIGTERM; how long the service took to exit 0."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(10) == 0
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def test_a_customers_bak_and_a_tenant_removed_never_stop_the_running_service(
    host: dict[str, Path], tmp_path: Path
) -> None:
    """Over real SFTP a customer swaps .bak for their own; an operator removes a tenant: it serves on."""
    base = host["base"]
    for name in (TENANT, OTHER):
        watcher(host, "tenant", "add", name, "--key", str(base / "client.pub"),
                "--failed-import-email", "registrar@uiw.example", "--reply-to", "admin@uiw.example",
                *layout(host))  # fmt: skip
    tenant_file = base / "etc" / "tenants.d" / f"{TENANT}.toml"
    tenant_file.write_text(tenant_file.read_text() + 'retention = "1d"\n')
    upload, other = base / "sftp" / TENANT / "upload", base / "sftp" / OTHER / "upload"
    service = _Running(host, tmp_path / "service.log")
    service.start()
    try:
        service.wait(lambda: len(service.events("sftp.listening")) == 2)
        local = tmp_path / "users.csv"
        local.write_text(users_csv(3))
        sftp(host, f"put {local} users.csv")
        service.wait(lambda: len(service.events("file.completed")) == 1)
        # The customer's own .bak, with a name that imitates the service's archives.
        sftp(host, "rename .bak .bak.y", "mkdir .bak",
             f"put {local} .bak/a.20200101T000000Z.deadbeef.csv")  # fmt: skip
        service.stop()
        service.start()  # retention runs at every start
        service.wait(lambda: len(service.events("retention.bak_not_ours")) == 1)
        assert (upload / ".bak" / "a.20200101T000000Z.deadbeef.csv").exists()
        removed = watcher(host, "tenant", "remove", TENANT, *layout(host))
        assert "The running service applies it within" in removed.stdout
        service.wait(lambda: len(service.events("tenant.drop_dir_missing")) >= 1)
        assert service.process is not None
        service.process.send_signal(signal.SIGHUP)  # systemctl reload: let the tenant go now
        service.wait(lambda: [e["tenant"] for e in service.events("tenant.removed")] == [TENANT])
        time.sleep(6)  # a look at every tenant's folders, and a rescan
        shutil.copy(local, other / "more.csv")
        shutil.chown(other / "more.csv", user=OTHER, group=GROUP)
        service.wait(lambda: len(service.events("file.completed")) == 2)
        assert service.stop() < 10
    finally:
        service.kill()
        for name in (TENANT, OTHER):
            subprocess.run([str(host["venv"] / "bin" / "watcher"), "tenant", "remove", name,
                            "--purge", *layout(host)], capture_output=True, check=False)  # fmt: skip
    assert service.events("service.pass_failed") == []
    assert [e["tenant"] for e in service.events("tenant.drop_dir_missing")] == [TENANT]
