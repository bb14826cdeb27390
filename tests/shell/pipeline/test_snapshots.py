"""Full snapshots end to end: missing users reported or deactivated, and the safeguard.

Each test runs ``watcher process`` as a separate process against the loopback
API, as an operator or the service would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import Site, users_csv
from tests.support.apiserver import ApiServer
from watcher.cli import EXIT_INCOMPLETE, EXIT_OK

if TYPE_CHECKING:
    from email.message import EmailMessage
    from pathlib import Path

pytestmark = pytest.mark.integration
DAY1 = users_csv(1000)
DEACTIVATE = 'snapshot = "full"\nmissing = "deactivate"'
FIELDS = 'deactivate_fields = { user_status = "inactive" }'


def without(text: str, ids: range) -> str:
    """``text`` without the users numbered ``ids``."""
    gone = {f"U-{i:05d}," for i in ids}
    return "".join(line for line in text.splitlines(keepends=True) if line[:8] not in gone)


def deactivations(api: ApiServer) -> list[dict[str, Any]]:
    """The requests that carried the deactivation's field."""
    with api.lock:
        return [r for r in api.requests if "user_status" in r]


def result(site: Site, name: str) -> dict[str, Any]:
    """The .result.json of the latest archive of ``name``."""
    stem = name.rsplit(".", 1)[0]
    path = max(site.bak.glob(f"{stem}.*.csv.result.json"), key=lambda p: p.stat().st_mtime)
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def watcher(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a ``watcher`` command on the site's configuration."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args, "--config", str(site.config)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def messages(site: Site) -> list[EmailMessage]:
    """Every message in the outbox, oldest name first."""
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in site.outbox()]


def test_users_missing_from_a_full_snapshot_are_deactivated_once(tmp_path: Path) -> None:
    """Day 1: 1,000 users; day 2 the same minus 30: exactly 30 deactivations, counted everywhere."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant=DEACTIVATE, api=FIELDS)
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        assert len(api.ids()) == 1000
        site.drop_file("users.csv", without(DAY1, range(100, 130)))
        day2 = site.process("users.csv")
        assert day2.returncode == EXIT_OK, day2.stderr
        sent = deactivations(api)
        assert len(api.ids()) == 1030  # nothing else was sent
        status = json.loads(watcher(site, "status", "--json").stdout)
    assert sorted(r["unique_id"] for r in sent) == [f"U-{i:05d}" for i in range(100, 130)]
    assert all(
        set(r) == {"apiToken", "unique_id", "login_source", "user_status"}
        and (r["login_source"], r["user_status"], r["apiToken"])
        == ("OPSCOM", "inactive", "tok-jcu")
        for r in sent
    )
    (done,) = [e for e in site.events(day2) if e["event"] == "batch.completed"]
    assert (done["rows"], done["unchanged"], done["missing"], done["deactivated"]) == (
        970,
        970,
        30,
        30,
    )
    document = result(site, "users.csv")
    assert document["snapshot"]["missing"] == 30
    assert document["snapshot"]["deactivated"] == 30
    assert document["snapshot"]["users"][0] == {"key": ["U-00100"], "state": "deactivated"}
    last = status["tenants"]["jcu"]["last_batch"]
    assert (last["missing"], last["deactivated"]) == (30, 30)
