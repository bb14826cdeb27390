"""A throwaway PostgreSQL cluster for tests: initdb in a temporary folder, a loopback port.

The distribution's server binaries live in ``/usr/lib/postgresql/<version>/bin``
(Debian's ``postgresql`` package puts only wrappers on the PATH). initdb
refuses to run as root, so as root the cluster runs as the ``postgres``
account the package creates. Logins over TCP need the password (scram), as
a real deployment's would.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from watcher.config import Secret
from watcher.shell.journal import PostgresTarget

__all__ = ["Cluster", "bin_dir", "require_postgres"]

PASSWORD = "test-only-" + uuid.uuid4().hex[:12]


def bin_dir() -> Path | None:
    """The folder of PostgreSQL's server binaries, if they are installed."""
    for found in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (found / "initdb").exists() and (found / "pg_ctl").exists():
            return found
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def require_postgres() -> Path:
    """The folder of PostgreSQL's server binaries; missing skips locally, fails under CI."""
    found = bin_dir()
    if found is None:
        message = "PostgreSQL's server (initdb, pg_ctl) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; .ci/run should install it")
        pytest.skip(message)
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A PostgreSQL server of its own, started and stopped by the tests."""

    def __init__(self, bin_dir: Path, settings: str = "") -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="uiw-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.password_file = self.root / "password"
        self.password_file.write_text(PASSWORD + "\n", encoding="utf-8")
        self.password_file.chmod(0o600)
        self._as: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        pwfile = self.root / "initpw"
        pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
        if self._as:
            shutil.chown(pwfile, "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                f"max_connections = 600\nlog_min_messages = warning\n{settings}\n"
            )
        self.start()

    @property
    def url(self) -> str:
        """The URL the service is given: no password in it."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def target(self, schema: str | None = None) -> PostgresTarget:
        """Where a journal goes: the cluster, a schema of its own (made here) when asked."""
        url = self.url
        if schema is not None:
            with self.admin() as db:
                db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            url += f"?options=-csearch_path%3D{schema}"
        return PostgresTarget(url, Secret(file=self.password_file))

    def fresh(self) -> PostgresTarget:
        """A journal nobody used yet: a new schema."""
        return self.target(f"t_{uuid.uuid4().hex[:16]}")

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection, for setting up and looking."""
        return psycopg.connect(self.url, password=PASSWORD, autocommit=True)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bin_dir / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        """Start the server and wait until it takes logins."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                with contextlib.closing(self.admin()):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` ends every connection, as a restart does)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        """Stop the server and remove its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
