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

from tests.shell.pipeline.test_change_aware import result
from tests.support import Site, users_csv
from tests.support.apiserver import ApiServer, Reply
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


def test_a_snapshot_deactivating_too_many_is_held_and_approve_sends_them(tmp_path: Path) -> None:
    """Day 3 drops 300 more of 970 known: held, nothing sent; approve sends the 300."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant=DEACTIVATE, api=FIELDS)
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", without(DAY1, range(100, 130)))
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", without(DAY1, range(100, 430)))
        held = site.process("users.csv")
        assert held.returncode == EXIT_INCOMPLETE, held.stderr
        assert len(deactivations(api)) == 30  # nothing more while held
        listing = watcher(site, "hold", "list", "--tenant", "jcu")
        approved = watcher(site, "hold", "approve", "--tenant", "jcu")
        assert approved.returncode == EXIT_OK, approved.stderr
        finished = site.process()
        assert finished.returncode == EXIT_OK, finished.stderr
        sent = [r["unique_id"] for r in deactivations(api)][30:]
    (event,) = [e for e in site.events(held) if e["event"] == "batch.held"]
    assert (event["reason"], event["deactivate"], event["changed"], event["known"]) == (
        "changes",
        300,
        0,
        970,
    )
    assert "would change 0 and deactivate 300 of 970 known users (31%)" in listing.stdout
    (notice,) = [m for m in messages(site) if "on hold" in m["Subject"]]
    text = notice.get_body().get_content()  # type: ignore[union-attr]
    assert "deactivate 300" in text
    assert sorted(sent) == [f"U-{i:05d}" for i in range(130, 430)]
    (done,) = [e for e in site.events(finished) if e["event"] == "batch.completed"]
    assert (done["missing"], done["deactivated"]) == (300, 300)


def test_a_small_snapshot_is_held_whatever_it_changes(tmp_path: Path) -> None:
    """40 rows for a tenant with 1,000 known users: held, nothing sent, the customer told why."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant=DEACTIVATE, api=FIELDS)
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", users_csv(40))
        held = site.process("users.csv")
        assert held.returncode == EXIT_INCOMPLETE, held.stderr
        assert len(api.requests) == 1000
        status = json.loads(watcher(site, "status", "--json").stdout)
    (event,) = [e for e in site.events(held) if e["event"] == "batch.held"]
    assert (event["reason"], event["snapshot"], event["missing"]) == ("small_snapshot", 40, 960)
    (shown,) = status["tenants"]["jcu"]["held"]
    assert (shown["reason"], shown["missing"], shown["deactivate"]) == ("small_snapshot", 960, 960)
    (notice,) = [m for m in messages(site) if "on hold" in m["Subject"]]
    text = notice.get_body().get_content()  # type: ignore[union-attr]
    assert "40 users" in text
    assert "1,000" in text


def test_a_kill_after_a_deactivation_was_answered_sends_it_at_most_once_more(
    tmp_path: Path,
) -> None:
    """SIGKILL between a deactivation's 2xx and its record: each sent twice at most, all done."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant=DEACTIVATE, api=FIELDS)
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", without(DAY1, range(100, 130)))
        killed = site.process("users.csv", env={"WATCHER_KILL_AT": "answered"})
        assert killed.returncode == -signal.SIGKILL
        resumed = site.process()
        assert resumed.returncode == EXIT_OK, resumed.stderr
        sent = Counter(r["unique_id"] for r in deactivations(api))
        site.drop_file("users.csv", without(DAY1, range(100, 130)))
        again = site.process("users.csv")
        assert again.returncode == EXIT_OK
        after = len(deactivations(api))
    assert sorted(sent) == [f"U-{i:05d}" for i in range(100, 130)]
    assert max(sent.values()) <= 2
    assert sum(sent.values()) - 30 <= 4  # the answered one and those in flight with it
    assert after == sum(sent.values())  # deactivated users are no longer known: not missing
    (done,) = [e for e in site.events(resumed) if e["event"] == "batch.completed"]
    assert (done["missing"], done["deactivated"]) == (30, 30)


def test_a_partial_tenant_never_deactivates_anything(tmp_path: Path) -> None:
    """The default: a file of 40 users after 1,000 imports 40 and touches nobody else."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, api=FIELDS)
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("some.csv", users_csv(40, start=2000))
        partial = site.process("some.csv")
        assert partial.returncode == EXIT_OK, partial.stderr
        assert deactivations(api) == []
        assert len(api.requests) == 1040
    (done,) = [e for e in site.events(partial) if e["event"] == "batch.completed"]
    assert (done["missing"], done["deactivated"]) == (0, 0)
    assert "snapshot" not in result(site, "some.csv")


def test_missing_users_are_reported_by_key_and_left_alone_by_default(tmp_path: Path) -> None:
    """Missing = "report": the email lists the 30 missing IDs in a CSV; nothing is sent."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant='snapshot = "full"')
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", without(DAY1, range(100, 130)))
        day2 = site.process("users.csv")
        assert day2.returncode == EXIT_OK, day2.stderr
        assert len(api.requests) == 1000
    (report,) = messages(site)
    assert report["Subject"] == "User import: 970 users up to date; 30 users missing"
    text = report.get_body().get_content()  # type: ignore[union-attr]
    assert "30 users imported before are not in the file(s) of this import." in text
    assert "They were not changed" in text
    (attached,) = list(report.iter_attachments())
    assert attached.get_filename() == "missing-users.csv"
    data = attached.get_payload(decode=True)
    assert isinstance(data, bytes)
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0] == "unique_id,import_status,import_error"
    assert lines[1:] == [f"U-{i:05d},missing (not changed)," for i in range(100, 130)]
    kept = list(site.bak.glob("*.missing.csv"))
    assert len(kept) == 1
    document = result(site, "users.csv")
    assert (document["snapshot"]["missing"], document["snapshot"]["deactivated"]) == (30, 0)
    assert document["status"] == "unchanged"


def test_a_delete_endpoint_gets_each_missing_user_by_its_own_url(tmp_path: Path) -> None:
    """deactivate_url with {unique_id} and DELETE: one request per user; 404 counts as done."""

    def answer(document: dict[str, Any], _: int) -> Reply:
        # Deactivations carry no name: only U-00101's finds the user already gone.
        gone = document.get("unique_id") == "U-00101" and "first_name" not in document
        return Reply(status=404, body={"error": "no such user"}) if gone else Reply()

    with ApiServer(answer) as api:
        base = api.url.rsplit("/", 1)[0]
        settings = (
            f'deactivate_url = "{base}/users/{{unique_id}}?source={{login_source}}"\n'
            'deactivate_method = "DELETE"'
        )
        site = Site(tmp_path, api_url=api.url, tenant=DEACTIVATE, api=settings)
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("users.csv", without(DAY1, range(100, 103)))
        day2 = site.process("users.csv")
        assert day2.returncode == EXIT_OK, day2.stderr
        with api.lock:
            calls = api.calls[1000:]
    assert sorted(calls) == [
        ("DELETE", f"/api/OC_TEST/v1/profiles/users/U-{i:05d}?source=OPSCOM")
        for i in range(100, 103)
    ]
    (done,) = [e for e in site.events(day2) if e["event"] == "batch.completed"]
    assert (done["missing"], done["deactivated"]) == (3, 3)


def test_the_check_lanes_preview_counts_what_the_import_then_does(tmp_path: Path) -> None:
    """check/: 12 new, 40 changed emails, 3 missing; nothing sent; the import then does just that."""
    lines = without(DAY1, range(100, 103)).splitlines()
    for i in range(1, 41):
        lines[i] = lines[i].replace("@jcu.example", "@new.jcu.example")
    day2 = "\n".join(lines) + "\n" + users_csv(12, start=5000).split("\n", 1)[1]
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, tenant=DEACTIVATE, api=FIELDS)
        site.drop_file("users.csv", DAY1)
        assert site.process("users.csv").returncode == EXIT_OK
        check = site.drop / "check"
        check.mkdir()
        (check / "users.csv").write_text(day2)
        once = watcher(site, "run", "--once")
        assert once.returncode == EXIT_OK, once.stderr
        assert len(api.requests) == 1000  # a check sends nothing
        answer = json.loads((check / "users.csv.check.json").read_text())
        site.drop_file("users.csv", day2)
        imported = site.process("users.csv")
        assert imported.returncode == EXIT_OK, imported.stderr
    assert answer["changes"] == {
        "new": 12,
        "changed": {"total": 40, "columns": {"email": 40}},
        "unchanged": 957,
        "missing": 3,
        "deactivate": 3,
        "would_hold": None,
    }
    (done,) = [e for e in site.events(imported) if e["event"] == "batch.completed"]
    assert (done["imported"], done["unchanged"], done["deactivated"]) == (52, 957, 3)
    (mail,) = [m for m in messages(site) if "Imported now" in m.get_body().get_content()]  # type: ignore[union-attr]
    text = mail.get_body().get_content()  # type: ignore[union-attr]
    assert (
        "Imported now, it would add 12, change 40 (email 40), leave 957 unchanged, deactivate 3."
        in text
    )


def test_files_of_one_batch_are_one_snapshot_and_a_refusal_is_reported(tmp_path: Path) -> None:
    """Two halves of the roster miss nobody; a deactivation the API refuses is listed, kept known."""

    def answer(document: dict[str, Any], _: int) -> Reply:
        locked = document.get("unique_id") == "U-00007" and "user_status" in document
        return Reply(status=422, body={"error": "user is locked"}) if locked else Reply()

    with ApiServer(answer) as api:
        site = Site(tmp_path, api_url=api.url, tenant=DEACTIVATE, api=FIELDS)
        site.drop_file("users.csv", users_csv(200))
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("a.csv", users_csv(100))
        site.drop_file("b.csv", users_csv(100, start=100))
        halves = site.process("a.csv", "b.csv")
        assert halves.returncode == EXIT_OK, halves.stderr
        site.drop_file("users.csv", without(users_csv(200), range(5, 10)))
        day3 = site.process("users.csv")
        assert day3.returncode == EXIT_OK, day3.stderr
        site.drop_file("users.csv", without(users_csv(200), range(5, 10)))
        day4 = site.process("users.csv")
        assert day4.returncode == EXIT_OK, day4.stderr
        tried = [r["unique_id"] for r in deactivations(api)]
    (two,) = [e for e in site.events(halves) if e["event"] == "batch.completed"]
    assert (two["rows"], two["missing"]) == (200, 0)
    (three,) = [e for e in site.events(day3) if e["event"] == "batch.completed"]
    assert (three["missing"], three["deactivated"]) == (5, 4)
    (four,) = [e for e in site.events(day4) if e["event"] == "batch.completed"]
    assert (four["missing"], four["deactivated"]) == (1, 0)  # the refused one, tried again
    assert sorted(tried) == ["U-00005", "U-00006", "U-00007", "U-00007", "U-00008", "U-00009"]
    (report,) = [
        m
        for m in messages(site)
        if m["Subject"].endswith("; 4 missing users deactivated; 1 missing user not deactivated")
    ]
    (attached,) = list(report.iter_attachments())
    data = attached.get_payload(decode=True)
    assert isinstance(data, bytes)
    assert "U-00007,missing (not deactivated),user is locked" in data.decode("utf-8-sig")
