"""The journal: a batch read whole in one go, moved on one step at a time, read-only for status."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from watcher.core.records import Counts, Identity, Reason
from watcher.core.states import BatchState, FileState
from watcher.errors import StateError
from watcher.shell.journal import Journal

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

IDENTITY = Identity(dev=1, ino=2, size=3, mtime_ns=4)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A journal with batch b1 of tenant jcu: one validated file f1, one refused entry f2."""
    j = Journal(tmp_path / "journal.sqlite")
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
def test_read_only_the_journal_can_be_read_and_not_written(tmp_path: Path) -> None:
    """``watcher status`` reads beside the service and cannot change a thing."""
    reader = Journal(tmp_path / "journal.sqlite", read_only=True)
    try:
        assert reader.batches.view("b1").counts.total == 7
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
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
