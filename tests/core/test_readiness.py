"""When an upload counts as finished: the tracker, with an injected clock."""

from __future__ import annotations

import pytest

from watcher.core.readiness import Signal, Tracker, is_temporary
from watcher.core.records import Identity

SETTLE = 5.0


def ident(size: int = 10, mtime: int = 1, ino: int = 7) -> Identity:
    """A file identity."""
    return Identity(dev=1, ino=ino, size=size, mtime_ns=mtime)


def tracker() -> Tracker:
    """A tracker with a 5 s settle time and a 100 s interruption limit."""
    return Tracker(settle=SETTLE, interrupted_after=100.0)


def feed(t: Tracker, name: str, *events: tuple[float, Signal]) -> None:
    """Note each (time, signal) and observe the same identity at that time."""
    for when, signal in events:
        t.note(name, signal, when)
        t.observe(name, ident(), when)


def test_a_plain_put_is_due_after_the_settle_time() -> None:
    """created, written, closed, then quiet for the settle time."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"), (0.1, "written"), (2.0, "closed"))
    assert t.due(6.9) == []
    assert t.due(7.0) == ["u.csv"]


def test_a_file_being_written_is_never_due() -> None:
    """Writes with no close keep the file waiting however long it is quiet."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"), (0.1, "written"))
    assert t.due(1000.0) == []


def test_a_standard_sftp_rename_completes_without_a_close() -> None:
    """Link then unlink gives only 'created' on the final name: that is complete."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"))
    assert t.due(5.0) == ["u.csv"]


def test_a_move_onto_the_name_completes() -> None:
    """posix-rename shows as a move; the destination is complete."""
    t = tracker()
    feed(t, "u.csv", (0.0, "moved_in"))
    assert t.due(5.0) == ["u.csv"]


def test_a_file_found_by_a_scan_only_is_due_once_stable() -> None:
    """A file that arrived while the service was down has only the scan to go on."""
    t = tracker()
    t.observe("u.csv", ident(), 0.0)
    t.note("u.csv", "scan", 0.0)
    assert t.due(5.0) == ["u.csv"]


def test_a_scan_does_not_complete_a_file_seen_being_written() -> None:
    """The scan does not override what events said."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"), (0.1, "written"))
    t.note("u.csv", "scan", 1.0)
    assert t.due(100.0) == []


def test_a_change_of_size_restarts_the_settle_time() -> None:
    """Settling is measured from the last observed change, on the service's clock."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"))
    t.observe("u.csv", ident(size=20), 4.0)
    assert t.due(8.9) == []
    assert t.due(9.0) == ["u.csv"]


def test_an_old_mtime_is_no_shortcut() -> None:
    """Put -p stamps an old mtime; only the service's clock counts."""
    t = tracker()
    t.note("u.csv", "created", 100.0)
    t.observe("u.csv", ident(mtime=1), 100.0)
    assert t.due(101.0) == []


def test_a_held_file_waits_another_settle_time() -> None:
    """When a writer still holds the file, it waits again."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"))
    t.held("u.csv", 5.0)
    assert t.due(9.9) == []
    assert t.due(10.0) == ["u.csv"]


def test_an_interrupted_upload_is_held_then_completed_by_its_resumption() -> None:
    """Forced close holds the file; a resumed upload's close completes it."""
    t = tracker()
    feed(t, "u.csv", (0.0, "sftp_open"), (1.0, "closed"), (1.0, "sftp_forced_close"))
    assert t.due(50.0) == []
    feed(t, "u.csv", (60.0, "sftp_open"), (61.0, "sftp_close"))
    assert t.due(66.0) == ["u.csv"]
    assert t.interrupted(500.0) == []


def test_an_unresumed_interruption_times_out() -> None:
    """An upload cut off and never resumed is reported after the limit."""
    t = tracker()
    feed(t, "u.csv", (0.0, "sftp_open"), (1.0, "sftp_forced_close"))
    assert t.interrupted(100.0) == []
    assert t.interrupted(101.0) == ["u.csv"]
    assert t.next_deadline() == 101.0


def test_under_the_sftp_log_the_folder_events_do_not_complete() -> None:
    """A close event from the folder is no proof when the log speaks for the file."""
    t = tracker()
    feed(t, "u.csv", (0.0, "sftp_open"), (1.0, "written"), (2.0, "closed"))
    assert t.due(100.0) == []
    feed(t, "u.csv", (3.0, "sftp_close"))
    assert t.due(8.0) == ["u.csv"]


def test_folder_events_after_the_log_close_do_not_undo_it() -> None:
    """The log and the folder are separate channels; a late write event changes nothing."""
    t = tracker()
    feed(t, "u.csv", (0.0, "sftp_open"), (1.0, "sftp_close"), (1.1, "written"), (1.2, "closed"))
    assert t.due(6.2) == ["u.csv"]


def test_a_sftp_rename_completes_the_new_name() -> None:
    """posix-rename in the log completes the destination name."""
    t = tracker()
    feed(t, "u.csv", (0.0, "sftp_renamed_in"))
    assert t.due(5.0) == ["u.csv"]


def test_a_vanished_file_is_forgotten() -> None:
    """Observing nothing removes the file."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"))
    t.observe("u.csv", None, 1.0)
    assert ("u.csv" in t, t.due(10.0)) == (False, [])


@pytest.mark.parametrize(
    ("name", "temporary"),
    [
        ("users.csv.filepart", True),
        ("users.part", True),
        ("users.tmp", True),
        (".in.users.csv.", True),
        (".pureftpd-upload.5f3a.users.csv", True),
        (".hidden.csv", True),
        ("users.csv~", True),
        ("~$users.xlsx", True),
        ("users.csv", False),
        ("users.CSV", False),
        ("report 2026.txt", False),
    ],
)
def test_temporary_upload_names(name: str, temporary: bool) -> None:
    """Names clients use during an upload are recognised."""
    assert is_temporary(name) is temporary


def test_temporary_names_are_never_tracked() -> None:
    """A .filepart never becomes due."""
    t = tracker()
    feed(t, "u.csv.filepart", (0.0, "created"), (1.0, "closed"))
    assert t.due(100.0) == []


def test_the_next_deadline_is_the_earliest_settle() -> None:
    """The service sleeps until the first file could become due."""
    t = tracker()
    feed(t, "a.csv", (3.0, "created"))
    feed(t, "b.csv", (1.0, "created"))
    assert t.next_deadline() == 6.0


def test_a_failed_ftps_upload_is_held_though_the_folder_said_closed() -> None:
    """Vsftpd logs FAIL UPLOAD just after the close: the file waits, whatever the folder says."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"), (0.5, "written"), (1.0, "closed"), (1.1, "ftps_failed"))
    assert t.due(50.0) == []
    # A resumed upload (REST + STOR, or APPE): its writes and close are not proof...
    feed(t, "u.csv", (60.0, "written"), (61.0, "closed"))
    assert t.due(80.0) == []
    # ...its OK UPLOAD is.
    feed(t, "u.csv", (62.0, "ftps_uploaded"))
    assert t.due(62.0 + SETTLE) == ["u.csv"]
    assert t.interrupted(500.0) == []


def test_an_ftps_upload_is_due_after_its_ok_upload_and_the_settle_time() -> None:
    """A whole upload: the close and OK UPLOAD agree; due once quiet for the settle time."""
    t = tracker()
    feed(t, "u.csv", (0.0, "created"), (1.0, "closed"), (2.0, "ftps_uploaded"))
    assert t.due(1.0 + SETTLE) == []
    assert t.due(2.0 + SETTLE) == ["u.csv"]


def test_an_empty_file_no_log_spoke_for_is_held_as_a_failed_upload() -> None:
    """Where uploads are logged: an empty, unlogged file is interrupted, not ready; a logged one is."""
    tracker = Tracker(settle=1.0, interrupted_after=60.0)
    tracker.note("noreuse.csv", "created", 0.0)
    tracker.note("sent-empty.csv", "ftps_uploaded", 0.0)
    tracker.note("data.csv", "created", 0.0)
    assert tracker.unconfirmed("noreuse.csv", 0, 5.0)
    assert not tracker.unconfirmed("sent-empty.csv", 0, 5.0)  # vsftpd logged it: really empty
    assert not tracker.unconfirmed("data.csv", 120, 5.0)
    assert "noreuse.csv" not in tracker.due(10.0)
    assert tracker.interrupted(70.0) == ["noreuse.csv"]  # told as an upload cut off, in time
    # A retry that succeeds, before then, completes it.
    tracker.note("noreuse.csv", "ftps_uploaded", 20.0)
    tracker.observe("noreuse.csv", Identity(dev=1, ino=2, size=120, mtime_ns=3), 20.0)
    assert "noreuse.csv" in tracker.due(30.0)
    assert tracker.interrupted(90.0) == []
