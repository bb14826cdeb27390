"""The journal: a batch read whole in one go, moved on one step at a time, read-only for status."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

import psycopg
import pytest

from watcher.core.changes import ChangeSummary
from watcher.core.records import Counts, Identity, MissingCounts, Reason
from watcher.core.states import BatchState, FileState, MessageState, Safeguard
from watcher.errors import StateError
from watcher.shell.journal import Check, Confirmed, Journal, MissingSet
from watcher.shell.journal.checks import Lately

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from watcher.shell.journal import JournalAt

IDENTITY = Identity(dev=1, ino=2, size=3, mtime_ns=4)


@pytest.fixture
def journal(journal_at: JournalAt) -> Iterator[Journal]:
    """A journal with batch b1 of tenant jcu: one validated file f1, one refused entry f2.

    Every test taking it runs on SQLite and on PostgreSQL.
    """
    j = Journal(journal_at)
    j.batches.open("jcu", "b1", now=1.0)
    j.files.add_claimed(
        batch_id="b1", tenant="jcu", file_id="f1", name="users.csv", identity=IDENTITY,
        sha256="abc", schema_digest="d1", now=2.0,
    )  # fmt: skip
    j.files.add_refused(
        batch_id="b1", tenant="jcu", file_id="f2", name="link.csv", code="file_refused",
        message="a link", now=3.0,
    )  # fmt: skip
    j.rows.record_validation(
        "f1",
        encoding="utf-8",
        rows_blank=1,
        file_error=None,
        valid_rows=[2, 3, 4],
        failed_rows=[5, 6, 7, 8],
        failures=[
            (5, "email", "invalid_email", "m1"),
            (6, "email", "invalid_email", "m2"),
            (7, "email", "invalid_email", "m3"),
            (8, "unique_id", "duplicate_key", "repeats row 9"),
            (8, "email", "invalid_email", "m4"),
        ],
        now=4.0,
    )
    yield j
    j.close()


def test_a_batch_is_read_with_its_files_counts_and_reasons_in_one_view(journal: Journal) -> None:
    """Counts per file and for the batch; reasons counted by kind, most frequent first."""
    journal.rows.record_outcomes("f1", [2, 3], [(4, "api_rejected", "no such user type")])
    view = journal.batches.view("b1")
    assert (view.id, view.batch.tenant, view.batch.state) == ("b1", "jcu", BatchState.CLAIMING)
    users, link = view.files
    assert (users.record.name, users.record.state, users.record.identity) == (
        "users.csv",
        FileState.VALIDATED,
        IDENTITY,
    )
    assert users.counts == Counts(total=7, imported=2, failed=5, pending=0)
    assert users.reasons == (
        Reason(count=4, field="email", code="invalid_email", example="m1"),
        Reason(count=1, field=None, code="api_rejected", example="no such user type"),
        Reason(count=1, field="unique_id", code="duplicate_key", example="repeats row 9"),
    )
    assert (link.record.state, link.record.code, link.counts, link.reasons) == (
        FileState.REFUSED,
        "file_refused",
        Counts(),
        (),
    )
    assert view.counts == Counts(total=7, imported=2, failed=5, pending=0)


def test_a_batch_moves_one_step_at_a_time_and_only_from_where_it_is(journal: Journal) -> None:
    """Each advance is the next step; a stale one (another run moved it) is refused."""
    assert journal.batches.advance("b1", BatchState.CLAIMING, now=5.0) is BatchState.IMPORTING
    with pytest.raises(RuntimeError, match="not in state claiming"):
        journal.batches.advance("b1", BatchState.CLAIMING, now=5.0)
    for state in (BatchState.IMPORTING, BatchState.REPORTING, BatchState.ARCHIVING):
        journal.batches.advance("b1", state, now=6.0)
    done = journal.batches.get("b1")
    assert (done.state, done.finished_at) == (BatchState.DONE, 6.0)
    assert journal.batches.unfinished("jcu") == []
    assert journal.batches.last_done("jcu") == done


def test_a_stop_keeps_its_first_time_and_its_latest_reason(journal: Journal) -> None:
    """Why rows are pending, and since when: the first stop's time, the last stop's reason."""
    journal.batches.note_stopped("b1", "api unavailable: HTTP 503", now=10.0)
    journal.batches.note_stopped("b1", "api auth: the API answered 401", now=20.0)
    assert journal.batches.get("b1").stopped == ("api auth: the API answered 401", 10.0)


def test_the_failures_a_report_lists_stop_after_so_many_rows(journal: Journal) -> None:
    """Every failure of the first two failed rows, in row order, and no more."""
    assert journal.rows.listed_failures("f1", 2) == [
        (5, "email", "invalid_email", "m1"),
        (6, "email", "invalid_email", "m2"),
    ]
    assert [r for r, *_ in journal.rows.listed_failures("f1", 4)] == [5, 6, 7, 8, 8]


def test_claimed_entries_are_what_unfinished_batches_hold(journal: Journal) -> None:
    """The claimed file by name and identity; the refused entry and archived files are free."""
    assert journal.files.claimed_entries("jcu") == {("users.csv", 1, 2, 4)}
    journal.files.mark_archived("f1", now=9.0)
    assert journal.files.claimed_entries("jcu") == set()
    assert journal.files.count(FileState.ARCHIVED) == 1


@pytest.mark.usefixtures("journal")
def test_read_only_the_journal_can_be_read_and_not_written(journal_at: JournalAt) -> None:
    """``watcher status`` reads beside the service and cannot change a thing."""
    reader = Journal(journal_at, read_only=True)
    try:
        assert reader.batches.view("b1").counts.total == 7
        with pytest.raises((sqlite3.OperationalError, psycopg.Error), match=r"read-?only"):
            reader.batches.open("jcu", "b2", now=1.0)
    finally:
        reader.close()


def test_read_only_a_journal_an_upgrade_would_change_is_refused_clearly(tmp_path: Path) -> None:
    """A journal of an earlier version is not upgraded by a reader: it says what to do."""
    path = tmp_path / "old.sqlite"
    Journal(path).close()
    with sqlite3.connect(path) as db:  # as the version before pending reasons wrote it
        db.execute("ALTER TABLE batches DROP COLUMN stopped_reason")
        db.execute("ALTER TABLE batches DROP COLUMN stopped_since")
        db.execute("DROP TABLE journal_version")  # versions came later still
        db.execute("DROP TABLE checks")  # and the check lane's answers later again
        db.execute("DROP TABLE missing")  # and full snapshots later still
        db.execute("ALTER TABLE row_state DROP COLUMN ident")
        db.execute("ALTER TABLE files DROP COLUMN notes")  # and reading's notes later again
    with pytest.raises(StateError, match="written by an earlier version: start the service"):
        Journal(path, read_only=True)
    Journal(path).close()  # a writer upgrades it
    Journal(path, read_only=True).close()


def test_unchanged_rows_are_marked_by_runs_and_only_those(journal: Journal) -> None:
    """Rows 2 and 4 unchanged, 3 still pending: a run stops at every gap."""
    journal.rows.mark_unchanged("f1", [4, 2])
    view = journal.batches.view("b1")
    assert view.files[0].counts == Counts(total=7, unchanged=2, failed=4, pending=1)
    assert journal.rows.pending("f1") == [3]


def test_held_batches_are_decided_once_and_schemas_are_kept_by_digest(journal: Journal) -> None:
    """A verdict with its summary round-trips; only a held batch is decided; a schema kept twice."""
    summary = ChangeSummary(rows=7, new=1, unchanged=2, changed=4, known=6, columns=(("email", 4),))
    journal.batches.check("b1", Safeguard.HELD, summary)
    assert journal.batches.decide("b1", Safeguard.APPROVED)
    assert not journal.batches.decide("b1", Safeguard.DISCARDED)  # no longer held
    batch = journal.batches.get("b1")
    assert (batch.safeguard, batch.changes) == (Safeguard.APPROVED, summary)
    journal.batches.remember_schema("d1", b'{"a": 1}')
    journal.batches.remember_schema("d1", b'{"a": 1}')
    assert journal.batches.schema_text("d1") == b'{"a": 1}'
    with pytest.raises(KeyError):
        journal.batches.schema_text("d2")


def test_a_done_batch_is_history_with_its_counts_days_and_codes(journal: Journal) -> None:
    """Kept counts feed the last batch of each tenant, the recent list and the daily chart."""
    journal.rows.record_outcomes("f1", [2, 3], [(4, "api_rejected", "no")])
    state = BatchState.CLAIMING
    day = 20_000 * 86400.0  # a day's midnight, UTC
    while state is not BatchState.DONE:
        state = journal.batches.advance("b1", state, day + 3600)
    journal.history.keep(journal.batches.view("b1"))
    assert journal.batches.finished_before("jcu", day + 7200) == ["b1"]
    assert journal.batches.last_done("jcu") is not None
    last = journal.history.last_done()["jcu"]
    assert (last.files, last.counts) == (
        ("users.csv", "link.csv"),
        Counts(total=7, imported=2, failed=5),
    )
    (recent,) = journal.history.recent("jcu")
    assert recent.codes[0] == ("invalid_email", 4)
    days = journal.history.daily("jcu", days=2, now=day + 7200)
    assert [(d.imported, d.failed) for d in days] == [(0, 0), (2, 5)]
    assert days[-1].day == time.strftime("%Y-%m-%d", time.gmtime(day))
    assert journal.history.pending() == {}


def test_an_unfinished_batch_is_listed_with_its_live_counts(journal: Journal) -> None:
    """Importing or held, a recent batch shows its files and rows, not zeros."""
    (recent,) = journal.history.recent("jcu")
    assert recent.state is not BatchState.DONE
    assert (recent.files, recent.counts) == (
        ("users.csv", "link.csv"),
        Counts(total=7, pending=3, failed=4),
    )


def test_a_file_failed_whole_ranks_among_a_batchs_codes_by_the_rows_it_failed(
    journal: Journal,
) -> None:
    """A header no schema knows, failing five rows, outranks a rule that failed four."""
    journal.files.add_claimed(
        batch_id="b1", tenant="jcu", file_id="f3", name="old.csv", identity=IDENTITY,
        sha256="def", schema_digest="d1", now=5.0,
    )  # fmt: skip
    journal.rows.record_validation(
        "f3",
        encoding="utf-8",
        rows_blank=0,
        file_error=("header_unknown", "a header no schema knows"),
        valid_rows=[],
        failed_rows=[2, 3, 4, 5, 6],
        failures=[],
        now=6.0,
    )
    (recent,) = journal.history.recent("jcu")
    # The refused link (no rows) counts once; the header's five rows count five.
    assert recent.codes == (("header_unknown", 5), ("invalid_email", 4), ("duplicate_key", 1))


def test_the_outbox_sends_a_message_once_and_counts_what_waits(journal: Journal) -> None:
    """Queued twice is one message; one claim wins; sent keeps its time; requeue after a death."""
    for _ in range(2):
        journal.messages.queue(message_id="m1", batch_id="b1", tenant="jcu", path="p", now=5.0)
    journal.messages.queue(message_id="m2", batch_id="b2", tenant="uoft", path="q", now=6.0)
    assert journal.history.outbox() == {"jcu": 1, "uoft": 1}
    assert journal.messages.claim("m1")
    assert not journal.messages.claim("m1")
    journal.messages.mark("m1", MessageState.SENT, now=7.0)
    assert journal.messages.claim("m2")
    assert journal.messages.requeue_sending() == 1
    (sent,) = journal.messages.in_state(MessageState.SENT)
    assert (sent.id, sent.sent_at, sent.attempts) == ("m1", 7.0, 1)
    assert [m.id for m in journal.messages.sent_before("jcu", 8.0)] == ["m1"]
    journal.messages.mark("m2", MessageState.QUEUED, now=8.0, error="421 busy")
    (waiting,) = journal.messages.in_state(MessageState.QUEUED)
    assert (waiting.last_error, waiting.sent_at) == ("421 busy", None)
    assert journal.messages.counts_by_tenant([MessageState.SENT, MessageState.QUEUED]) == {
        "jcu": {"sent": 1},
        "uoft": {"queued": 1},
    }
    assert journal.messages.count(MessageState.QUEUED, tenant="uoft") == 1
    # What waits, since when and why: the oldest queued message, the last error tried.
    journal.messages.queue(message_id="m3", batch_id="b3", tenant="uoft", path="r", now=9.0)
    assert journal.messages.oldest_waiting() == {"uoft": (6.0, "421 busy")}
    assert journal.messages.oldest_waiting("jcu") == {}


def test_fingerprints_are_confirmed_with_their_rows_per_tenant_and_target(
    journal: Journal,
) -> None:
    """Confirming twice keeps the latest; another target or tenant knows nothing of it."""
    prints = {2: ("U-1", "d-first", "f"), 3: ("U-2", "d2", "f"), 4: ("U-1", "d-old", "f")}
    confirmed = Confirmed(tenant="jcu", target="https://api", now=5.0, prints=prints)
    journal.rows.record_outcomes("f1", [2, 3, 4], [], confirmed)
    # A user twice in one flush keeps the later row's fingerprint.
    assert journal.users.known("jcu", "https://api", ["U-1"]).rows() == [("U-1", "d-old", "f", 5.0)]
    newer = Confirmed(tenant="jcu", target="https://api", now=6.0, prints={2: ("U-1", "d1", "g")})
    journal.rows.record_outcomes("f1", [2], [], newer)
    known = journal.users.known("jcu", "https://api", ["U-1", "U-2", "U-3"]).sort("key")
    assert known.rows() == [("U-1", "d1", "g", 6.0), ("U-2", "d2", "f", 5.0)]
    assert journal.users.count("jcu", "https://api") == 2
    assert journal.users.count("jcu", "embedded") == 0
    assert journal.users.known("uoft", "https://api", ["U-1"]).height == 0


def test_retention_drops_rows_but_keeps_a_files_counts(journal: Journal) -> None:
    """Forgotten rows leave the view's counts as they were; a second forget does nothing."""
    before = journal.batches.view("b1").files[0].counts
    assert journal.rows.forget(["f1", "f2"]) == 1
    assert journal.rows.forget(["f1"]) == 0
    assert journal.batches.view("b1").files[0].counts == before
    assert journal.rows.pending("f1") == []


def test_attempts_count_per_step_and_a_file_is_found_by_its_bytes(journal: Journal) -> None:
    """Each try counts; archived, a file's bytes find it for a later batch of the tenant."""
    assert [journal.files.count_attempt("f1") for _ in range(2)] == [1, 2]
    journal.files.name_archive("f1", "users.2026.csv", now=8.0)
    journal.files.mark_archived("f1", now=9.0)
    assert journal.files.count_attempt("f1") == 1  # archived: a new step, counted anew
    assert journal.files.get("f1").archive_name == "users.2026.csv"
    journal.batches.open("jcu", "b2", now=10.0)
    journal.files.add_claimed(
        batch_id="b2", tenant="jcu", file_id="f3", name="again.csv", identity=IDENTITY,
        sha256="abc", schema_digest="d1", now=11.0,
    )  # fmt: skip
    assert journal.files.identical(journal.files.get("f3"), since=0.0) == ("users.csv", 2.0)
    with pytest.raises(KeyError):
        journal.files.count_attempt("nothing")


def test_a_tenant_is_owned_by_one_instance_until_its_lease_ends(journal: Journal) -> None:
    """Taken once; renewed by its owner only; free again when released or expired."""
    leases = journal.leases
    leases.join("a", "host-a", 1)
    leases.join("b", "host-b", 2)
    assert leases.live_instances(30.0) == 2
    tenants = ["jcu", "uoft", "mcgill"]
    assert leases.take("a", tenants, want=2, timeout=30.0) == {"jcu", "uoft"}
    assert leases.take("b", tenants, want=3, timeout=30.0) == {"mcgill"}
    assert leases.renew("a", 30.0) == {"jcu", "uoft"}
    owners = leases.owners()
    assert (owners["jcu"].instance, owners["jcu"].host, owners["jcu"].live) == ("a", "host-a", True)
    assert leases.release("a", "uoft")
    assert not leases.release("b", "jcu")  # not b's to give
    assert leases.take("b", tenants, want=3, timeout=30.0) == {"uoft"}
    assert leases.take("b", ["jcu"], want=1, timeout=0.0) == set()  # a's lease holds
    assert leases.renew("a", -1.0) == {"jcu"}  # a lease that ends at once
    assert leases.renew("a", 30.0) == set()  # ended: not renewed, not a's any more
    assert leases.take("b", ["jcu"], want=1, timeout=30.0) == {"jcu"}
    leases.leave("b")
    assert leases.owners() == {}
    assert leases.live_instances(30.0) == 1
    assert abs(leases.now() - time.time()) < 60


def test_read_only_a_journal_still_being_made_is_one_clear_line(tmp_path: Path) -> None:
    """A file the service has opened but not yet given tables: refused, not read as tables."""
    path = tmp_path / "journal.sqlite"
    sqlite3.connect(path).close()  # what the service's first connect leaves, for a moment
    with pytest.raises(StateError, match="holds no tables yet: the service is creating it"):
        Journal(path, read_only=True)


def test_check_answers_are_kept_once_and_summed_per_tenant(journal: Journal) -> None:
    """An answer kept twice (a crash after it) stays one; the week sums files, clean and last."""
    journal.checks.record(Check(id="c1", tenant="jcu", name="a.csv", checked_at=10.0, rows=5,
                                failed=0))  # fmt: skip
    journal.checks.record(Check(id="c1", tenant="jcu", name="a.csv", checked_at=99.0, rows=5,
                                failed=0))  # fmt: skip
    journal.checks.record(Check(id="c2", tenant="jcu", name="b.csv", checked_at=20.0, rows=9,
                                failed=3))  # fmt: skip
    journal.checks.record(Check(id="c3", tenant="jcu", name="c.csv", checked_at=30.0, rows=0,
                                failed=0, code="file_refused"))  # fmt: skip
    journal.checks.record(Check(id="c4", tenant="uoft", name="d.csv", checked_at=5.0, rows=1,
                                failed=0))  # fmt: skip
    recent = journal.checks.recent("jcu")
    assert [(c.name, c.checked_at, c.code) for c in recent] == [
        ("c.csv", 30.0, "file_refused"),
        ("b.csv", 20.0, None),
        ("a.csv", 10.0, None),
    ]
    assert [c.name for c in journal.checks.recent("jcu", limit=1)] == ["c.csv"]
    lately = journal.checks.lately(since=10.0)
    assert lately == {"jcu": Lately(files=3, clean=1, last=30.0)}
    assert journal.checks.lately(since=1.0)["uoft"] == Lately(files=1, clean=1, last=5.0)


def test_outcomes_out_of_order_change_only_their_rows(journal: Journal) -> None:
    """Answers come back in any order: 4 then 2 imported, 3 left pending between them."""
    journal.rows.record_outcomes("f1", [4, 2], [])
    view = journal.batches.view("b1")
    assert view.files[0].counts == Counts(total=7, imported=2, failed=4, pending=1)
    assert journal.rows.pending("f1") == [3]
    journal.rows.record_outcomes("f1", [], [(3, "api_rejected", "no")])
    assert journal.batches.view("b1").files[0].counts == Counts(total=7, imported=2, failed=5)


def test_missing_users_are_recorded_with_the_verdict_and_deactivated_once(
    journal: Journal,
) -> None:
    """Recorded with the check; a deactivation forgets the user, a refusal keeps it known."""
    prints = {2: ("U-1", "d1", "f"), 3: ("U-2", "d2", "f"), 4: ("U-3", "d3", "f")}
    idents = {2: '{"login_source":"OPSCOM"}'}
    confirmed = Confirmed(tenant="jcu", target="api", now=5.0, prints=prints, idents=idents)
    journal.rows.record_outcomes("f1", [2, 3, 4], [], confirmed)
    every = journal.users.every("jcu", "api").sort("key")
    assert every.rows() == [("U-1", '{"login_source":"OPSCOM"}'), ("U-2", None), ("U-3", None)]
    summary = ChangeSummary(rows=0, new=0, unchanged=0, changed=0, known=3, missing=3)
    users = [("U-2", None), ("U-1", '{"login_source":"OPSCOM"}'), ("U-3", None)]
    found = MissingSet(tenant="jcu", target="api", deactivate=True, users=users)
    journal.batches.check("b1", Safeguard.PASSED, summary, found)
    journal.batches.check("b1", Safeguard.PASSED, summary, found)  # again after a crash: replaced
    assert journal.missing.pending("b1") == [
        ("U-1", '{"login_source":"OPSCOM"}'),
        ("U-2", None),
        ("U-3", None),
    ]
    journal.missing.record_outcomes("b1", ["U-1"], [("U-2", "api_rejected", "locked")])
    assert journal.missing.counts("b1") == MissingCounts(
        total=3, deactivated=1, refused=1, pending=1
    )
    assert journal.batches.view("b1").counts.missing == 3
    assert journal.batches.view("b1").counts.deactivated == 1
    assert sorted(journal.users.every("jcu", "api")["key"]) == ["U-2", "U-3"]
    assert journal.missing.listed("b1", 2) == [
        ("U-1", "deactivated", None, None),
        ("U-2", "failed", "api_rejected", "locked"),
    ]
    journal.missing.fail_pending("b1", "file_discarded", "discarded")
    assert journal.missing.pending("b1") == []
    journal.missing.forget(["b1"])
    assert journal.missing.counts("b1") == MissingCounts()


def test_reported_missing_users_stay_known(journal: Journal) -> None:
    """With missing = "report": recorded as reported, nothing pending, nobody forgotten."""
    confirmed = Confirmed(tenant="jcu", target="api", now=5.0, prints={2: ("U-1", "d1", "f")})
    journal.rows.record_outcomes("f1", [2], [], confirmed)
    summary = ChangeSummary(rows=0, new=0, unchanged=0, changed=0, known=1, missing=1)
    found = MissingSet(tenant="jcu", target="api", deactivate=False, users=[("U-1", None)])
    journal.batches.check("b1", Safeguard.PASSED, summary, found)
    assert journal.missing.pending("b1") == []
    assert journal.missing.counts("b1") == MissingCounts(total=1)
    assert journal.users.count("jcu", "api") == 1
