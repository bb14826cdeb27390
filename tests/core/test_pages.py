"""The status page's HTML: counts and names shown, everything escaped, the chart drawn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.core.pages import chart, overview_page, tenant_page

if TYPE_CHECKING:
    from watcher.core.documents import DayRows, Status, TenantStatus


def tenant_status(**changes: object) -> TenantStatus:
    """A tenant's status with one finished batch."""
    status: TenantStatus = {
        "drop_dir": "/srv/sftp/jcu/upload",
        "owner": None,
        "folder_ok": True,
        "files": [{"name": "next<b>.csv", "state": "settling"}],
        "batch_in": None,
        "batch_running": False,
        "schema": {"version": "2026-11-22", "digest": "d", "path": "/s.json"},
        "schema_on_disk": None,
        "last_batch": {
            "id": "b1", "finished_at": 0.0, "files": 1, "rows": 1200, "imported": 1100,
            "unchanged": 50, "failed": 50, "missing": 0, "deactivated": 0,
        },
        "unfinished_batches": 0,
        "pending_rows": 0,
        "pending_reason": None,
        "held": [],
        "outbox": {"waiting": 0, "rejected": 0, "since": None, "error": None, "late": False},
        "checks": {"files": 0, "clean": 0, "last": None},
    }  # fmt: skip
    status.update(changes)  # type: ignore[typeddict-item]
    return status


def test_the_overview_shows_each_tenants_last_batch_and_state() -> None:
    """A row per tenant with its counts; a held tenant says so; names are escaped."""
    status: Status = {
        "running": True,
        "pid": 42,
        "status_age": 0.5,
        "instance": None,
        "tenants": {
            "jcu": tenant_status(),
            "uofx": tenant_status(
                held=[
                    {
                        "id": "b2",
                        "since": 0.0,
                        "files": 1,
                        "rows": 9,
                        "changed": 5,
                        "known": 9,
                        "columns": ["email"],
                    }
                ],
            ),
        },
    }
    page = overview_page(status)
    assert "<a href='/tenants/jcu'>jcu</a>" in page
    assert (
        "<td class=n>1,200</td><td class=n>1,100</td><td class=n>50</td><td class=n>50</td>" in page
    )
    assert "<td class=held>held for review</td>" in page
    assert "<script" not in page  # no script, and nothing fetched from elsewhere:
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_with_instances_sharing_tenants_the_overview_names_each_owner() -> None:
    """An owner column: the instance, a lease run out in red, nobody yet; this instance named."""
    status: Status = {
        "running": True,
        "pid": 42,
        "status_age": 0.5,
        "instance": "sftp-1",
        "tenants": {
            "a": tenant_status(
                owner={"instance": "sftp-2", "host": "h", "live": True, "expires_in": 9.0}
            ),
            "b": tenant_status(
                owner={"instance": "sftp-1", "host": "h", "live": False, "expires_in": -1.0}
            ),
            "c": tenant_status(),
        },
    }
    page = overview_page(status)
    assert "This is instance sftp-1; instances share the tenants." in page
    assert "<th>Owner</th>" in page
    assert "<td>sftp-2</td>" in page
    assert "<td class=failing>sftp-1 (lease ran out)</td>" in page
    assert "<td class=muted>nobody yet</td>" in page
    alone = overview_page({**status, "instance": None})
    assert "Owner" not in alone
    assert "instance" not in alone


def test_a_tenant_page_escapes_file_names_and_lists_recent_batches() -> None:
    """A file name with markup stays text; the recent batch shows its codes and missing users."""
    page = tenant_page(
        {
            "name": "jcu",
            "status": tenant_status(),
            "recent": [
                {
                    "id": "b1",
                    "state": "done",
                    "created_at": 30.0,
                    "received_at": 0.0,
                    "finished_at": 420.0,
                    "files": ["users<script>.csv"],
                    "rows": 1200,
                    "imported": 1100,
                    "unchanged": 50,
                    "failed": 50,
                    "pending": 0,
                    "missing": 30,
                    "deactivated": 28,
                    "codes": [("invalid_email", 40), ("required", 10)],
                },
            ],
            "checks": [],
            "daily": [{"day": "2026-12-01", "imported": 10, "unchanged": 5, "failed": 1}],
        },
        running=True,
    )
    assert "users&lt;script&gt;.csv" in page
    # When the file arrived and when its batch finished, both.
    assert "<th>Arrived</th><th>Finished</th>" in page
    assert "<td>1970-01-01 00:00 UTC</td><td>1970-01-01 00:07 UTC</td>" in page
    assert "next&lt;b&gt;.csv" in page
    assert "invalid_email &times;40, required &times;10" in page
    assert "<script>" not in page
    assert "<td class=n>30 (28 deactivated)</td>" in page  # a full snapshot's missing users
    assert "Schema in force: 2026-11-22" in page


def test_the_chart_gives_each_kind_its_own_scale_and_axis() -> None:
    """A strip per kind: 12 failed rows are as visible as 62,315 imported, each axis labelled."""
    days: list[DayRows] = [
        {"day": "2026-12-01", "imported": 62315, "unchanged": 10, "failed": 12},
        {"day": "2026-12-02", "imported": 0, "unchanged": 0, "failed": 3},
    ]
    svg = chart(days, width=284, height=150)
    assert svg.count("<rect") == 4  # no bar for nothing
    # The highest day of each kind fills its strip (50 tall, 6 of it left as a gap).
    assert svg.count("height='44.0'") == 3
    assert "height='11.0' fill='#c62828'" in svg  # 3 failed of the highest 12
    for label in (
        ">62,315</text>",
        ">10</text>",
        ">12</text>",
        ">imported</text>",
        ">failed</text>",
    ):
        assert label in svg
    assert "2026-12-01: 12 failed" in svg


def test_mail_stuck_for_long_turns_the_tenant_amber_and_says_why() -> None:
    """SMTP down: not "ok" with "Mail waiting 1" but "mail waiting", since when and why."""
    late = tenant_status(
        outbox={
            "waiting": 2, "rejected": 0, "since": 3600.0,
            "error": "connection refused", "late": True,
        }
    )  # fmt: skip
    overview = overview_page(
        {"running": True, "pid": 1, "status_age": 0.1, "instance": None, "tenants": {"jcu": late}}
    )
    assert "<td class=held>mail waiting</td>" in overview
    page = tenant_page(
        {"name": "jcu", "status": late, "recent": [], "checks": [], "daily": []}, running=True
    )
    assert (
        "<p class=held>2 messages waiting to be sent since 1970-01-01 01:00 UTC: "
        "connection refused</p>"
    ) in page
    fresh = tenant_status(
        outbox={"waiting": 1, "rejected": 0, "since": 3600.0, "error": None, "late": False}
    )
    assert "<td class=ok>ok</td>" in overview_page(
        {"running": True, "pid": 1, "status_age": 0.1, "instance": None, "tenants": {"jcu": fresh}}
    )


def test_the_check_lanes_activity_shows_on_both_pages() -> None:
    """The week's count on the overview; each answer on the tenant's page, escaped, in words."""
    lane = tenant_status(checks={"files": 3, "clean": 1, "last": 7200.0})
    overview = overview_page(
        {"running": True, "pid": 1, "status_age": 0.1, "instance": None, "tenants": {"jcu": lane}}
    )
    assert "Checked (7 days)</th>" in overview
    assert "<td class=n>3</td><td class=ok>ok</td>" in overview
    page = tenant_page(
        {
            "name": "jcu",
            "status": lane,
            "recent": [],
            "checks": [
                {"name": "a<i>.csv", "checked_at": 7200.0, "rows": 40, "failed": 0, "code": None},
                {"name": "b.csv", "checked_at": 3600.0, "rows": 4000, "failed": 12, "code": None},
                {"name": "c.xlsx", "checked_at": 60.0, "rows": 0, "failed": 0, "code": "file_type"},
            ],
            "daily": [],
        },
        running=True,
    )
    assert "<h2>Check lane</h2><p>3 files checked in the last 7 days, 1 of them would import" in (
        page.replace("\n", "")
    )
    assert (
        "<tr><td>1970-01-01 02:00 UTC</td><td>a&lt;i&gt;.csv</td><td class=n>40</td>"
        "<td class=ok>would import whole</td></tr>"
    ) in page
    assert "<td class=n>4,000</td><td class=held>12 rows would fail</td>" in page
    assert "<td class=failing>file failed: file_type</td>" in page
    quiet = tenant_page(
        {"name": "jcu", "status": tenant_status(), "recent": [], "checks": [], "daily": []},
        running=True,
    )
    assert "0 files checked in the last 7 days" in quiet
    assert "No file checked yet." in quiet


def test_a_tenant_importing_now_shows_its_pace() -> None:
    """Answers a second, requests in flight and the learnt limit, while it sends."""
    busy = tenant_status(
        batch_running=True, importing={"in_flight": 12, "limit": 16.0, "rate": 361.0}
    )
    page = tenant_page(
        {"name": "jcu", "status": busy, "recent": [], "checks": [], "daily": []}, running=True
    )
    assert (
        "<p>Importing now: 361 answers a second from the API, 12 in flight, limit 16 as learnt "
        "from its answers.</p>"
    ) in page
    idle = tenant_page(
        {"name": "jcu", "status": tenant_status(), "recent": [], "checks": [], "daily": []},
        running=True,
    )
    assert "Importing now" not in idle
