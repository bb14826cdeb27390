"""Helpers the tests share: sites on disk, sample users, validating bytes, finding tools."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from watcher.core.reading import read_table
from watcher.core.schema_parser import parse_schema
from watcher.core.tables import Table, Unreadable
from watcher.core.validation import ValidationReport, validate

if TYPE_CHECKING:
    from watcher.core.schema import Schema

ROOT = Path(__file__).resolve().parents[2]
OPSCOM_SCHEMA = ROOT / "schema" / "opscom-users.json"


def small_schema(*fields: dict[str, Any], **top: Any) -> Schema:
    """A schema built from field objects, as a file would hold them."""
    return parse_schema(json.dumps({"fields": list(fields), **top}))


def table_of(data: bytes) -> Table:
    """Read ``data`` and insist it is readable."""
    table = read_table(data)
    assert isinstance(table, Table), table
    return table


def check(data: bytes | str, schema: Schema) -> ValidationReport:
    """Validate CSV text against ``schema``."""
    raw = data.encode() if isinstance(data, str) else data
    return validate(read_table(raw), schema)


def failures(report: ValidationReport) -> list[tuple[int, str | None, str]]:
    """The report's failures as (row, field, code) triples."""
    return [(f.row, f.field, f.code) for f in report.row_failures()]


def unreadable(data: bytes) -> Unreadable:
    """Read ``data`` and insist it is refused."""
    result = read_table(data)
    assert isinstance(result, Unreadable), result
    return result


class Site:
    """A tenant's drop folder, a state folder and a configuration file."""

    def __init__(
        self,
        root: Path,
        *,
        api_url: str | None = None,
        smtp_port: int | None = None,
        api: str = "",
        service: str = "",
        tenant: str = "",
    ) -> None:
        self.root = root
        self.drop = root / "sftp" / "jcu" / "upload"
        self.state = root / "state"
        self.drop.mkdir(parents=True)
        self.token = root / "jcu.token"
        self.token.write_text("tok-jcu\n")
        text = f"""
[service]
state_dir = "state"
{service}
"""
        if smtp_port is not None:
            text += f"""
[email]
host = "127.0.0.1"
port = {smtp_port}
max_attempts = 2
timeout = 5
"""
        text += f"""
[[tenant]]
name = "jcu"
drop_dir = "sftp/jcu/upload"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "registrar@jcu.example"
reply_to = "Import Admin <admin@jcu.example>"
{tenant}
"""
        if api_url is not None:
            text += f"""
[tenant.api]
url = "{api_url}"
token_file = "jcu.token"
concurrency = 4
timeout = 1
max_attempts = 2
max_retry_time = 5
{api}
"""
        self.config = root / "watcher.toml"
        self.config.write_text(text)

    @property
    def bak(self) -> Path:
        """The tenant's .bak folder."""
        return self.drop / ".bak"

    def drop_file(self, name: str, data: bytes | str) -> Path:
        """Put a file into the drop folder, as an upload would."""
        path = self.drop / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def process(
        self, *names: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``watcher process`` for the given files as a separate process."""
        return subprocess.run(
            [sys.executable, "-m", "watcher", "process", "--config", str(self.config),
             "--tenant", "jcu", *(str(self.drop / n) for n in names)],
            capture_output=True, text=True, check=False, timeout=timeout,
            env={**os.environ, **(env or {})},
        )  # fmt: skip

    def events(self, result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
        """The JSON log lines a run printed."""
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def users(self) -> dict[str, tuple[dict[str, str], int]]:
        """The embedded store: key to (attributes, how many imports wrote it)."""
        path = self.state / "users.sqlite"
        if not path.exists():
            return {}
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT key, attributes, imports FROM users WHERE tenant = 'jcu'")
            return {k: (json.loads(a), n) for k, a, n in rows}

    def outbox(self) -> list[Path]:
        """Failure reports waiting in the outbox."""
        return sorted((self.state / "outbox").glob("*.eml"))


def users_csv(count: int, *, bad_every: int = 0, start: int = 0) -> str:
    """A users file with ``count`` rows; every ``bad_every``-th has a bad email."""
    lines = ["unique_id,first_name,email,user_type_id"]
    for i in range(start, start + count):
        email = "not-an-email" if bad_every and i % bad_every == 0 else f"u{i}@jcu.example"
        lines.append(f"U-{i:05d},Name{i},{email},{i % 7}")
    return "\n".join(lines) + "\n"


def require(tool: str) -> str:
    """The path of ``tool``; a missing tool skips locally and fails under CI."""
    found = shutil.which(tool) or next(
        (str(p) for p in (Path("/usr/sbin") / tool, Path("/sbin") / tool) if p.exists()), None
    )
    if found is None:
        message = f"{tool} is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; .ci/run should install it")
        pytest.skip(message)
    return found


def require_sshd() -> str:
    """The path of sshd, with the privilege separation folder it insists on.

    Debian's package creates ``/run/sshd`` only when its service starts, which
    never happens on a machine without systemd running.
    """
    sshd = require("sshd")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    return sshd


def require_root(why: str) -> None:
    """Go on only as root; otherwise skip locally and fail under CI, saying ``why``."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} needs root")
    pytest.skip(f"{why} needs root")
