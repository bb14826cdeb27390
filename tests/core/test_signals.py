"""What watchdog events and SFTP transactions mean for a drop folder's files."""

from __future__ import annotations

from pathlib import PurePosixPath

from watchdog.events import (
    DirCreatedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from watcher.core.ftpslog import Transfer
from watcher.core.sftplog import Transaction
from watcher.core.signals import Audit, Change, Heard, changes, hear, hear_ftps

UPLOAD = PurePosixPath("/upload")
FIELDS = {"tenant": "jcu", "pid": 7}


def test_folder_events_become_changes_of_files_directly_in_it() -> None:
    """Created, written and closed files signal; subfolders and reads do not."""

    def of(event: object) -> list[Change]:
        return changes("jcu", "/d", event)  # type: ignore[arg-type]

    assert of(FileCreatedEvent("/d/a.csv")) == [
        Change(tenant="jcu", name="a.csv", signal="created")
    ]
    assert of(FileModifiedEvent("/d/a.csv")) == [
        Change(tenant="jcu", name="a.csv", signal="written")
    ]
    assert of(FileClosedEvent("/d/a.csv")) == [Change(tenant="jcu", name="a.csv", signal="closed")]
    assert of(FileDeletedEvent("/d/a.csv")) == [
        Change(tenant="jcu", name="a.csv", signal=None, gone=True)
    ]
    assert of(FileOpenedEvent("/d/a.csv")) == []
    assert of(FileClosedNoWriteEvent("/d/a.csv")) == []
    assert of(FileCreatedEvent("/d/sub/a.csv")) == []
    assert of(DirCreatedEvent("/d/sub")) == []


def test_a_move_is_the_source_going_and_the_destination_arriving() -> None:
    """A rename within the folder, and one from a subfolder into it."""
    assert changes("jcu", "/d", FileMovedEvent("/d/a.part", "/d/a.csv")) == [
        Change(tenant="jcu", name="a.part", signal=None, gone=True),
        Change(tenant="jcu", name="a.csv", signal="moved_in"),
    ]
    assert changes("jcu", "/d", FileMovedEvent("/d/sub/a.csv", "/d/a.csv")) == [
        Change(tenant="jcu", name="a.csv", signal="moved_in")
    ]


def test_an_upload_opened_for_writing_has_a_writer_and_is_audited() -> None:
    """Open with WRITE: the file is being written by that session."""
    t = Transaction(kind="open", pid=7, path="/upload/a.csv", writes=True)
    assert hear(t, UPLOAD, {}, "jcu") == Heard(
        notes=(("a.csv", "sftp_open"),),
        writer=("a.csv", 7),
        audit=Audit(level="info", event="sftp.upload_started", fields={"file": "a.csv", **FIELDS}),
    )


def test_a_close_counts_only_from_the_session_that_opened_the_file() -> None:
    """Close by the writer finishes the upload; by another session it changes nothing."""
    close = Transaction(kind="close", pid=7, path="/upload/a.csv", written=10)
    assert hear(close, UPLOAD, {"a.csv": 7}, "jcu") == Heard(
        notes=(("a.csv", "sftp_close"),),
        writer=("a.csv", None),
        audit=Audit(
            level="info",
            event="sftp.upload_finished",
            fields={"file": "a.csv", "bytes": 10, **FIELDS},
        ),
    )
    assert hear(close, UPLOAD, {"a.csv": 8}, "jcu") == Heard()


def test_a_forced_close_holds_the_file_as_interrupted() -> None:
    """The session died mid-upload: a warning, and the file is not finished."""
    forced = Transaction(kind="forced_close", pid=7, path="/upload/a.csv", written=3)
    heard = hear(forced, UPLOAD, {"a.csv": 7}, "jcu")
    assert (heard.notes, heard.writer) == ((("a.csv", "sftp_forced_close"),), ("a.csv", None))
    assert heard.audit is not None
    assert (heard.audit.level, heard.audit.event) == ("warning", "sftp.upload_interrupted")


def test_a_rename_forgets_the_old_name_and_completes_the_new_one() -> None:
    """posix-rename of a temporary name onto the final one."""
    rename = Transaction(kind="rename", pid=7, path="/upload/a.part", new_path="/upload/a.csv")
    assert hear(rename, UPLOAD, {}, "jcu") == Heard(
        forget=("a.part",),
        notes=(("a.csv", "sftp_renamed_in"),),
        observe=("a.csv",),
        audit=Audit(
            level="info", event="sftp.renamed", fields={"file": "a.csv", "old": "a.part", **FIELDS}
        ),
    )


def test_links_are_alerts_and_paths_outside_the_folder_are_ignored() -> None:
    """A symlink to /etc/passwd is a warning; a write elsewhere changes no file."""
    link = Transaction(kind="symlink", pid=7, path="/etc/passwd", new_path="/upload/evil.csv")
    heard = hear(link, UPLOAD, {}, "jcu")
    assert (heard.notes, heard.audit) == (
        (),
        Audit(
            level="warning",
            event="sftp.link_attempt",
            fields={"kind": "symlink", "target": "/etc/passwd", "link": "evil.csv", **FIELDS},
        ),
    )
    elsewhere = Transaction(kind="open", pid=7, path="/upload/.bak/a.csv", writes=True)
    assert hear(elsewhere, UPLOAD, {}, "jcu") == Heard()


def test_without_the_folder_known_no_name_is_taken() -> None:
    """Before the chroot is known, transactions change nothing but are still audited."""
    t = Transaction(kind="session_opened", pid=7, user="jcu")
    assert hear(t, None, {}, "jcu") == Heard(
        audit=Audit(level="info", event="sftp.session_opened", fields={"user": "jcu", **FIELDS})
    )
    assert (
        hear(Transaction(kind="open", pid=7, path="/upload/a.csv", writes=True), None, {}, "jcu")
        == Heard()
    )


def _transfer(kind: str, path: str = "", size: int | None = None) -> Transfer:
    return Transfer(kind=kind, pid=7, user="jcu", client="10.0.0.7", path=path, size=size)  # type: ignore[arg-type]


def test_vsftpd_lines_become_signals_for_files_in_the_folder() -> None:
    """OK UPLOAD completes, FAIL UPLOAD holds; a path outside the folder only audits."""
    names: list[str] = []
    ok = hear_ftps(_transfer("upload_ok", "/upload/a.csv", 5), UPLOAD, "jcu", lambda: names)
    assert ok == Heard(
        notes=(("a.csv", "ftps_uploaded"),),
        observe=("a.csv",),
        audit=Audit(level="info", event="ftps.upload_finished",
                    fields={"file": "a.csv", "bytes": 5, **FIELDS}),
    )  # fmt: skip
    failed = hear_ftps(_transfer("upload_failed", "/upload/a.csv", 3), UPLOAD, "jcu", lambda: names)
    assert failed.notes == (("a.csv", "ftps_failed"),)
    assert failed.audit is not None
    assert failed.audit.level == "warning"
    outside = hear_ftps(_transfer("upload_failed", "/../x.csv"), UPLOAD, "jcu", lambda: names)
    assert outside.notes == ()
    assert outside.audit is not None
    assert outside.audit.fields["file"] == "/../x.csv"


def test_a_hidden_byte_is_looked_up_only_when_the_name_has_one() -> None:
    """The folder is listed for a name written with ?, and its one match is the file."""
    listed: list[int] = []

    def names() -> list[str]:
        listed.append(1)
        return ["café.csv", "cafe.csv"]

    assert hear_ftps(_transfer("upload_ok", "/upload/plain.csv"), UPLOAD, "jcu", names).notes == (
        ("plain.csv", "ftps_uploaded"),
    )
    assert listed == []
    heard = hear_ftps(_transfer("upload_ok", "/upload/caf??.csv"), UPLOAD, "jcu", names)
    assert heard.notes == (("café.csv", "ftps_uploaded"),)
    assert listed == [1]


def test_vsftpd_renames_and_deletes_move_the_tracking() -> None:
    """A rename completes the new name and forgets the old; a delete forgets."""
    heard = hear_ftps(
        _transfer("rename", "/upload/a.part /upload/a.csv"), UPLOAD, "jcu", lambda: ["a.csv"]
    )
    assert (heard.forget, heard.notes, heard.observe) == (
        ("a.part",),
        (("a.csv", "sftp_renamed_in"),),
        ("a.csv",),
    )
    gone = hear_ftps(_transfer("delete", "/upload/a.csv"), UPLOAD, "jcu", list)
    assert gone.forget == ("a.csv",)
    login = hear_ftps(_transfer("login_failed"), UPLOAD, "jcu", list)
    assert login.audit == Audit(
        level="warning",
        event="ftps.login_failed",
        fields={"user": "jcu", "client": "10.0.0.7", **FIELDS},
    )
