"""Following vsftpd's log on the real filesystem: new lines once, rotation, restarts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from structlog.testing import capture_logs

from watcher.shell.intake.ftpslog import FtpsLog

if TYPE_CHECKING:
    from pathlib import Path

    from watcher.core.ftpslog import Transfer


def line(name: str, user: str = "jcu", outcome: str = "OK") -> str:
    """A vsftpd upload line for ``/upload/name``."""
    return (
        f'Wed Dec  2 06:24:26 2026 [pid 9] [{user}] {outcome} UPLOAD: Client "127.0.0.1", '
        f'"/upload/{name}", 14 bytes, 0.30Kbyte/sec\n'
    )


class Heard:
    """What a follower hands on."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, str]] = []

    def __call__(self, tenant: str, transfer: Transfer) -> None:
        """Keep the tenant, the kind and the file name."""
        self.got.append((tenant, transfer.kind, transfer.path.rsplit("/", 1)[-1]))

    def take(self) -> list[tuple[str, str, str]]:
        """What came since the last take."""
        got, self.got = self.got, []
        return got


def follower(tmp_path: Path) -> FtpsLog:
    """A follower of ``tmp_path/vsftpd.log`` for tenant jcu (account jcu)."""
    return FtpsLog(
        tmp_path / "vsftpd.log",
        tmp_path / "mark.json",
        {"jcu": "jcu"},
        log=structlog.get_logger(),
    )


def append(path: Path, text: str) -> None:
    """Write as vsftpd does: appended."""
    with path.open("a") as out:
        out.write(text)


def test_only_lines_written_since_the_first_start_are_heard_each_once(tmp_path: Path) -> None:
    """The first start begins at the end; whole lines only; other accounts are not heard."""
    log, heard = tmp_path / "vsftpd.log", Heard()
    log.write_text(line("old.csv"))
    ftps = follower(tmp_path)
    ftps.read(heard)
    assert heard.take() == []
    append(log, line("a.csv") + line("theirs.csv", user="other") + line("b.csv")[:30])
    ftps.read(heard)
    assert heard.take() == [("jcu", "upload_ok", "a.csv")]
    append(log, line("b.csv")[30:] + line("c.csv", outcome="FAIL"))
    ftps.read(heard)
    assert heard.take() == [("jcu", "upload_ok", "b.csv"), ("jcu", "upload_failed", "c.csv")]
    ftps.read(heard)
    assert heard.take() == []
    ftps.close()


def test_a_rotated_log_is_read_to_its_end_then_the_new_one(tmp_path: Path) -> None:
    """Rename and a new file (logrotate's create): a late line in the old file still counts."""
    log, heard = tmp_path / "vsftpd.log", Heard()
    log.write_text("")
    ftps = follower(tmp_path)
    ftps.read(heard)
    append(log, line("a.csv"))
    log.rename(tmp_path / "vsftpd.log.1")
    append(tmp_path / "vsftpd.log.1", line("late.csv"))  # a session still writing there
    log.write_text(line("b.csv"))
    ftps.read(heard)
    assert heard.take() == [
        ("jcu", "upload_ok", "a.csv"),
        ("jcu", "upload_ok", "late.csv"),
        ("jcu", "upload_ok", "b.csv"),
    ]
    append(tmp_path / "vsftpd.log.1", line("later.csv"))
    ftps.read(heard)
    assert heard.take() == [("jcu", "upload_ok", "later.csv")]
    ftps.close()


def test_a_log_truncated_in_place_is_read_from_its_start(tmp_path: Path) -> None:
    """Copytruncate keeps the file and empties it: reading starts again at 0."""
    log, heard = tmp_path / "vsftpd.log", Heard()
    log.write_text("")
    ftps = follower(tmp_path)
    ftps.read(heard)
    append(log, line("a.csv") + line("b.csv"))
    ftps.read(heard)
    log.write_text(line("c.csv"))
    ftps.read(heard)
    assert heard.take()[-1] == ("jcu", "upload_ok", "c.csv")
    ftps.close()


def test_a_restart_goes_on_where_the_last_run_stopped(tmp_path: Path) -> None:
    """Lines written while the service was down are heard at its next start."""
    log, heard = tmp_path / "vsftpd.log", Heard()
    log.write_text("")
    first = follower(tmp_path)
    first.read(heard)
    append(log, line("a.csv"))
    first.read(heard)
    first.close()
    assert heard.take() == [("jcu", "upload_ok", "a.csv")]
    append(log, line("while-down.csv", outcome="FAIL"))
    second = follower(tmp_path)
    second.read(heard)
    assert heard.take() == [("jcu", "upload_failed", "while-down.csv")]
    second.close()


def test_a_restart_after_a_rotation_reads_the_rotated_file_first(tmp_path: Path) -> None:
    """The mark names the file now called .1: its rest, then the new file from its start."""
    log, heard = tmp_path / "vsftpd.log", Heard()
    log.write_text("")
    first = follower(tmp_path)
    first.read(heard)
    append(log, line("a.csv"))
    first.read(heard)
    first.close()
    heard.take()
    append(log, line("before-rotation.csv"))
    log.rename(tmp_path / "vsftpd.log.1")
    log.write_text(line("after-rotation.csv"))
    second = follower(tmp_path)
    second.read(heard)
    assert heard.take() == [
        ("jcu", "upload_ok", "before-rotation.csv"),
        ("jcu", "upload_ok", "after-rotation.csv"),
    ]
    second.close()


def test_an_unreadable_log_is_said_once_and_read_once_it_appears(tmp_path: Path) -> None:
    """A missing log is an error, logged once; made later, it is read from its start."""
    heard = Heard()
    ftps = follower(tmp_path)
    with capture_logs() as logs:
        ftps.read(heard)
        ftps.read(heard)
        (tmp_path / "vsftpd.log").write_text(line("first.csv"))
        ftps.read(heard)
    assert [e["event"] for e in logs] == ["ftps.log_unreadable", "ftps.log_followed"]
    assert heard.take() == [("jcu", "upload_ok", "first.csv")]
    ftps.close()
