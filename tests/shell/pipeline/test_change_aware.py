"""Imports that cost what changed, and batches held when too much would change, end to end.

Each test runs ``watcher process`` as a separate process against the loopback
API, as an operator or the service would.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import Site, users_csv
from tests.support.apiserver import ApiServer
from watcher.cli import EXIT_INCOMPLETE, EXIT_OK

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
SNAPSHOT = users_csv(200)


def changed(text: str, every: int) -> str:
    """``text`` with the email of every ``every``-th user changed."""
    lines = text.splitlines()
    for i in range(1, len(lines), every):
        lines[i] = lines[i].replace("@jcu.example", "@new.jcu.example")
    return "\n".join(lines) + "\n"


def result(site: Site, name: str) -> dict[str, Any]:
    """The .result.json of the latest archive of ``name``."""
    stem = name.rsplit(".", 1)[0]
    path = max(site.bak.glob(f"{stem}.*.csv.result.json"), key=lambda p: p.stat().st_mtime)
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def hold(site: Site, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``watcher hold`` for the site's tenant."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", "hold", *args, "--config", str(site.config),
         "--tenant", "jcu"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_a_snapshot_sent_again_costs_only_the_rows_that_changed(tmp_path: Path) -> None:
    """200 users, then the same with 2 emails changed: 2 POSTs, 198 unchanged."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url)
        site.drop_file("users.csv", SNAPSHOT)
        assert site.process("users.csv").returncode == EXIT_OK
        assert len(api.ids()) == 200
        site.drop_file("users.csv", changed(SNAPSHOT, 100))
        second = site.process("users.csv")
        assert second.returncode == EXIT_OK, second.stderr
        ids = api.ids()[200:]
    assert sorted(ids) == ["U-00000", "U-00100"]
    assert result(site, "users.csv")["rows"] == {
        "total": 200,
        "imported": 2,
        "unchanged": 198,
        "failed": 0,
        "pending": 0,
        "blank": 0,
    }
    (done,) = [e for e in site.events(second) if e["event"] == "batch.completed"]
    assert (done["imported"], done["unchanged"]) == (2, 198)


def test_an_identical_file_is_reported_and_sends_nothing_even_without_skipping(
    tmp_path: Path,
) -> None:
    """skip_unchanged = false resends changed-or-not rows, but never an identical file's."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant="skip_unchanged = false")
        site.drop_file("users.csv", SNAPSHOT)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("again.csv", SNAPSHOT)
        assert site.process("again.csv").returncode == EXIT_OK
        assert len(api.ids()) == 200
        site.drop_file("users.csv", changed(SNAPSHOT, 100))
        assert site.process("users.csv").returncode == EXIT_OK
        assert len(api.ids()) == 400  # not identical: every row is sent again
    again = result(site, "again.csv")
    assert again["identical_to"]["file"] == "users.csv"
    assert (again["status"], again["rows"]["unchanged"]) == ("unchanged", 200)


def test_resend_all_sends_every_valid_row_once(tmp_path: Path) -> None:
    """With ``--resend-all`` the unchanged rows go too."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url)
        site.drop_file("users.csv", SNAPSHOT)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", SNAPSHOT)
        resent = subprocess.run(
            [sys.executable, "-m", "watcher", "process", "--config", str(site.config),
             "--tenant", "jcu", "--resend-all", str(site.drop / "users.csv")],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert resent.returncode == EXIT_OK, resent.stderr
        assert len(api.ids()) == 400
    assert result(site, "users.csv")["rows"]["imported"] == 200


def test_a_kill_after_the_api_answered_sends_a_row_at_most_once_more(tmp_path: Path) -> None:
    """SIGKILL between a 2xx and its record: resent once at most, confirmed after."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url)
        site.drop_file("users.csv", SNAPSHOT)
        killed = site.process("users.csv", env={"WATCHER_KILL_AT": "answered"})
        assert killed.returncode == -signal.SIGKILL
        assert site.process("users.csv").returncode == EXIT_OK
        first = api.ids()
        site.drop_file("users.csv", SNAPSHOT + "U-99999,Late,late@jcu.example,1\n")
        assert site.process("users.csv").returncode == EXIT_OK
        later = api.ids()[len(first) :]
    assert sorted(set(first)) == sorted(f"U-{i:05d}" for i in range(200))
    assert len(first) - 200 <= 4  # the answered row and those in flight with it
    assert later == ["U-99999"]  # every row of the first batch was confirmed


def test_a_held_batch_waits_survives_a_restart_and_is_imported_once_approved(
    tmp_path: Path,
) -> None:
    """Half the known users changing: held, the customer told, nothing sent until approved."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant="safeguard_min_known = 10")
        site.drop_file("users.csv", SNAPSHOT)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", changed(SNAPSHOT, 2))
        held = site.process("users.csv")
        assert held.returncode == EXIT_INCOMPLETE, held.stderr
        site.drop_file("later.csv", users_csv(3, start=500))
        waiting = site.process("later.csv")  # a restart: still held, later files wait behind
        assert waiting.returncode == EXIT_INCOMPLETE
        assert len(api.ids()) == 200
        listing = hold(site, "list")
        status = subprocess.run(
            [sys.executable, "-m", "watcher", "status", "--json", "--config", str(site.config)],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        approved = hold(site, "approve")
        assert approved.returncode == EXIT_OK, approved.stderr
        assert site.process().returncode == EXIT_OK
        ids = api.ids()[200:]
    (event,) = [e for e in site.events(held) if e["event"] == "batch.held"]
    assert (event["changed"], event["known"], event["columns"]) == (100, 200, ["email"])
    assert "would change 100 of 200 known users (50%)" in listing.stdout
    shown = json.loads(status.stdout)["tenants"]["jcu"]["held"]
    assert [(h["changed"], h["known"], h["columns"]) for h in shown] == [(100, 200, ["email"])]
    (notice,) = [p for p in site.outbox() if p.name.endswith(".held.eml")]
    message = BytesParser(policy=policy.default).parsebytes(notice.read_bytes())
    assert message["Subject"] == "User import on hold: it would change 100 of 200 users"
    text = message.get_body().get_content()  # type: ignore[union-attr]
    assert "  email: 100 users" in text
    assert "  users.csv: 200 rows" in text.splitlines()  # the file's rows, not 0
    # The notice promised a report either way: the approved batch gets one (notify = failures).
    subjects = sorted(
        BytesParser(policy=policy.default).parsebytes(p.read_bytes())["Subject"]
        for p in site.outbox()
        if not p.name.endswith(".held.eml")
    )
    # The later batch was never held: under notify = "failures" it sends nothing.
    assert subjects == ["User import: 100 of 200 users imported, the rest up to date"]
    assert not any(value in text for value in ("U-000", "Name1", "u1@", "new.jcu"))  # no row values
    # The 100 changed rows of the held file once each, then the 3 of the later file.
    assert (len(ids), len(set(ids))) == (103, 103)
    assert sorted(p.name for p in site.drop.iterdir()) == [".bak"]


def test_a_discarded_batch_is_archived_unimported_and_the_customer_told(tmp_path: Path) -> None:
    """discard: no row sent, each file fails whole with file_discarded, in the report."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant="safeguard_min_known = 10")
        site.drop_file("users.csv", SNAPSHOT)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", changed(SNAPSHOT, 2))
        assert site.process("users.csv").returncode == EXIT_INCOMPLETE
        discarded = hold(site, "discard")
        assert discarded.returncode == EXIT_OK, discarded.stderr
        finished = site.process()
        assert finished.returncode == EXIT_OK, finished.stderr
        assert len(api.ids()) == 200
    document = result(site, "users.csv")
    assert (document["status"], document["file_error"]["code"]) == (
        "not_imported",
        "file_discarded",
    )
    reports = [p for p in site.outbox() if not p.name.endswith(".held.eml")]
    (report,) = reports
    message = BytesParser(policy=policy.default).parsebytes(report.read_bytes())
    assert "an administrator discarded it" in message.get_body().get_content()  # type: ignore[union-attr]
    assert hold(site, "approve").returncode != EXIT_OK  # nothing is held any more
