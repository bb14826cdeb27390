"""What a customer reads of a full snapshot's missing users: the list, the lines, the subject."""

from __future__ import annotations

from watcher.core.changes import ChangeSummary, join_key
from watcher.core.missing import missing_csv
from watcher.core.notices import changes_line
from watcher.core.records import Counts, MissingCounts
from watcher.core.reporting import (
    FileSummary,
    SnapshotReport,
    needs_report,
    snapshot_lines,
    subject,
)

FILE = FileSummary(name="users.csv", received_at=0.0, counts=Counts(total=970, unchanged=970))


def test_the_list_names_each_user_by_its_key_fields_and_says_what_became_of_it() -> None:
    """Key fields as columns, a state in words, the API's reason; a formula-like key is inert."""
    users = [
        (join_key(["S-1", "OPSCOM"]), "deactivated", None, None),
        (join_key(["=HYPERLINK()", "LDAP"]), "failed", "api_rejected", "user is locked"),
    ]
    text = missing_csv(["unique_id", "login_source"], users).decode("utf-8-sig")
    assert text.splitlines() == [
        "unique_id,login_source,import_status,import_error",
        "S-1,OPSCOM,deactivated,",
        "'=HYPERLINK(),LDAP,missing (not deactivated),user is locked",
    ]


def test_missing_users_alone_make_a_report_and_say_so_in_the_subject() -> None:
    """Nothing failed, 30 missing: a report goes out, its subject counts them."""
    reported = SnapshotReport(counts=MissingCounts(total=30), deactivate=False, listed=30)
    assert not needs_report([FILE])
    assert needs_report([FILE], reported)
    assert subject([FILE], reported) == "User import: 970 users up to date; 30 users missing"
    done = MissingCounts(total=30, deactivated=28, refused=2)
    deactivated = SnapshotReport(counts=done, deactivate=True, listed=30)
    assert subject([FILE], deactivated) == (
        "User import: 970 users up to date; 28 missing users deactivated; "
        "2 missing users not deactivated"
    )


def test_the_paragraph_says_what_was_done_and_where_the_list_is() -> None:
    """Deactivated, refused and waiting counts; the attached list named; a cut list said."""
    counts = MissingCounts(total=20_000, deactivated=19_000, refused=500, pending=500)
    report = SnapshotReport(
        counts=counts, deactivate=True, listed=10_000, list_name="missing-users.csv"
    )
    assert snapshot_lines(report) == [
        "Users missing from this snapshot",
        "  20,000 users imported before are not in the file(s) of this import.",
        "  19,000 deactivated, 500 not deactivated (the reason is in the list), 500 still waiting.",
        "  A user who is back in a later file is imported again as new.",
        "  Their IDs are listed in the attached missing-users.csv.",
        "  The list holds the first 10,000.",
        "",
    ]


def test_the_preview_line_gives_counts_columns_and_a_hold() -> None:
    """Added, changed by column, unchanged, deactivated; a hold says why."""
    summary = ChangeSummary(
        rows=20_000,
        new=12,
        unchanged=19_648,
        changed=340,
        known=20_000,
        columns=(("email", 300), ("last_name", 40)),
        snapshot=20_000,
        missing=3,
        deactivate=3,
    )
    assert changes_line(summary) == (
        "would add 12, change 340 (email 300, last_name 40), leave 19,648 unchanged, deactivate 3"
    )
    small = ChangeSummary(
        rows=40, new=0, unchanged=40, changed=0, known=1000, snapshot=40, missing=960,
        hold="small_snapshot",
    )  # fmt: skip
    assert changes_line(small) == (
        "would add 0, change 0, leave 40 unchanged, report 960 missing; it would be held for "
        "review: it names far fewer users than were imported before"
    )
