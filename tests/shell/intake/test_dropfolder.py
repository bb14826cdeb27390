"""Claiming and archiving on the real filesystem, with hostile drop folders."""

from __future__ import annotations

import errno
import hashlib
import os
from typing import TYPE_CHECKING

import pytest

from tests.support import require_root
from watcher.core.codes import Code
from watcher.core.refusals import Refused
from watcher.shell.intake.dropfolder import BAK, Busy, Claimed, DropFolder, Gone

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    """An empty drop folder."""
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def claim(drop: Path, name: str, max_size: int = 1024) -> tuple[object, Path]:
    """Claim ``name`` into a spool path beside the drop folder."""
    spool = drop.parent / "spool" / f"{name}.copy"
    with DropFolder(drop) as folder:
        return folder.claim(name, spool, max_size), spool


def test_a_plain_file_is_copied_with_its_hash(drop: Path) -> None:
    """A regular file is copied to the spool and identified."""
    (drop / "users.csv").write_bytes(b"a,b\n1,2\n")
    result, spool = claim(drop, "users.csv")
    assert isinstance(result, Claimed)
    assert spool.read_bytes() == b"a,b\n1,2\n"
    assert result.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert result.identity.size == 8


def test_a_symlink_to_a_file_outside_is_refused_unread(drop: Path, tmp_path: Path) -> None:
    """A link to a secret outside the folder is refused and its target never read."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    (drop / "evil.csv").symlink_to(secret)
    result, spool = claim(drop, "evil.csv")
    assert result == Refused(
        name="evil.csv",
        code=Code.FILE_REFUSED,
        kind="symlink",
        message="This is a symbolic link, not a file. Links are never followed; upload the file itself.",
    )
    assert not spool.exists()


def test_a_hard_linked_file_is_refused(drop: Path, tmp_path: Path) -> None:
    """A file with a second name elsewhere is not read."""
    other = tmp_path / "elsewhere.csv"
    other.write_text("a\n1\n")
    os.link(other, drop / "linked.csv")
    result, _ = claim(drop, "linked.csv")
    assert isinstance(result, Refused)
    assert result.kind == "hardlink"


def test_a_fifo_is_refused_without_blocking(drop: Path) -> None:
    """A named pipe is refused at once; opening it does not wait for a writer."""
    os.mkfifo(drop / "pipe.csv")
    result, _ = claim(drop, "pipe.csv")
    assert isinstance(result, Refused)
    assert result.kind == "special"


def test_an_oversized_file_is_refused_with_the_limit(drop: Path) -> None:
    """A file over the limit is refused before a byte is copied."""
    (drop / "big.csv").write_bytes(b"x" * 2048)
    result, spool = claim(drop, "big.csv", max_size=1024)
    assert isinstance(result, Refused)
    assert result.code is Code.FILE_TOO_LARGE
    assert not spool.exists()


def test_a_folder_is_refused(drop: Path) -> None:
    """A subfolder is not a file to import."""
    (drop / "sub").mkdir()
    result, _ = claim(drop, "sub")
    assert isinstance(result, Refused)
    assert result.kind == "folder"


def test_a_vanished_file_is_gone(drop: Path) -> None:
    """A name that no longer exists is reported as gone."""
    assert claim(drop, "nothing.csv")[0] == Gone(name="nothing.csv")


def test_a_file_changing_during_the_copy_is_busy(
    drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the file changes while copied, the copy is dropped and it is left for later."""
    path = drop / "growing.csv"
    path.write_bytes(b"a\n1\n")
    real_fstat = os.fstat
    calls = [0]

    def fstat(fd: int) -> os.stat_result:
        calls[0] += 1
        if calls[0] == 2:
            path.write_bytes(b"a\n1\n2\n")
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", fstat)
    result, spool = claim(drop, "growing.csv")
    assert result == Busy(name="growing.csv")
    assert not spool.exists()


def test_a_copy_cut_off_by_a_full_disk_leaves_no_partial_spool_file(
    drop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC during the copy: the error goes up and the half-written copy is removed."""
    (drop / "big.csv").write_bytes(b"a\n" + b"1\n" * 1_000_000)
    real_write = os.write
    writes = [0]

    def write(fd: int, data: bytes) -> int:
        writes[0] += 1
        if writes[0] == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    spool = tmp_path / "spool" / "x.csv"
    with DropFolder(drop) as folder, pytest.raises(OSError, match="No space left"):
        folder.claim("big.csv", spool, 10 * 1024 * 1024)
    assert not spool.exists()
    assert (drop / "big.csv").exists()


def test_archiving_puts_the_services_copy_into_bak_and_removes_the_original(drop: Path) -> None:
    """.bak gets the spool copy, a file of the service's own; the upload itself goes."""
    (drop / "users.csv").write_bytes(b"a\n1\n")
    uploaded = (drop / "users.csv").stat().st_ino
    result, spool = claim(drop, "users.csv")
    assert isinstance(result, Claimed)
    with DropFolder(drop) as folder:
        folder.archive("users.csv", result.identity, "users.X.csv", spool)
        folder.archive("users.csv", result.identity, "users.X.csv", spool)  # idempotent
    assert sorted(p.name for p in drop.iterdir()) == [BAK]
    assert sorted(p.name for p in (drop / BAK).iterdir()) == ["users.X.csv"]  # nothing hidden left
    archived = drop / BAK / "users.X.csv"
    assert archived.read_bytes() == b"a\n1\n"
    assert archived.stat().st_ino != uploaded
    assert (archived.stat().st_uid, archived.stat().st_mode & 0o777) == (os.geteuid(), 0o644)


def test_a_bak_others_may_write_in_is_set_aside(drop: Path) -> None:
    """A .bak open to writing by others could have its history changed: a new one is made."""
    (drop / BAK).mkdir()
    (drop / BAK).chmod(0o777)
    (drop / BAK / "planted.csv").write_bytes(b"x")
    (drop / "users.csv").write_bytes(b"a\n1\n")
    result, spool = claim(drop, "users.csv")
    assert isinstance(result, Claimed)
    with DropFolder(drop) as folder:
        folder.archive("users.csv", result.identity, "users.X.csv", spool)
    assert sorted(p.name for p in (drop / BAK).iterdir()) == ["users.X.csv"]
    assert (drop / BAK).stat().st_mode & 0o022 == 0
    (aside,) = (p for p in drop.iterdir() if p.name.startswith(".bak.not-ours."))
    assert (aside / "planted.csv").read_bytes() == b"x"


def test_a_bak_another_account_owns_is_set_aside(drop: Path) -> None:
    """A customer who makes .bak first owns it; the service archives into one of its own."""
    require_root("making a folder another account owns")
    (drop / BAK).mkdir(mode=0o755)
    os.chown(drop / BAK, 65534, 65534)  # nobody
    (drop / "users.csv").write_bytes(b"a\n1\n")
    result, spool = claim(drop, "users.csv")
    assert isinstance(result, Claimed)
    with DropFolder(drop) as folder:
        folder.archive("users.csv", result.identity, "users.X.csv", spool)
    assert (drop / BAK).stat().st_uid == os.geteuid()
    assert (drop / BAK / "users.X.csv").exists()
    assert [p.stat().st_uid for p in drop.iterdir() if p.name.startswith(".bak.not-ours.")] == [
        65534
    ]


def test_a_file_replaced_after_claiming_is_kept_and_the_copy_archived(drop: Path) -> None:
    """A new upload under the same name stays for later; .bak gets what was processed."""
    (drop / "users.csv").write_bytes(b"a\nold\n")
    result, spool = claim(drop, "users.csv")
    assert isinstance(result, Claimed)
    (drop / "users.csv").unlink()
    (drop / "users.csv").write_bytes(b"a\nnew\n")  # the inode number is often reused
    with DropFolder(drop) as folder:
        folder.archive("users.csv", result.identity, "users.X.csv", spool)
    assert (drop / "users.csv").read_bytes() == b"a\nnew\n"
    assert (drop / BAK / "users.X.csv").read_bytes() == b"a\nold\n"


def test_archiving_never_overwrites_an_earlier_archive(drop: Path) -> None:
    """An existing .bak entry of that name is never replaced."""
    (drop / BAK).mkdir()
    (drop / BAK / "users.X.csv").write_bytes(b"earlier")
    (drop / "users.csv").write_bytes(b"later")
    result, spool = claim(drop, "users.csv")
    assert isinstance(result, Claimed)
    with DropFolder(drop) as folder:
        folder.archive("users.csv", result.identity, "users.X.csv", spool)
    assert (drop / BAK / "users.X.csv").read_bytes() == b"earlier"


def test_a_bak_symlink_is_set_aside_not_followed(drop: Path, tmp_path: Path) -> None:
    """A .bak replaced by a link is renamed away; nothing is written through it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (drop / BAK).symlink_to(outside)
    (drop / "users.csv").write_bytes(b"a\n1\n")
    result, spool = claim(drop, "users.csv")
    assert isinstance(result, Claimed)
    with DropFolder(drop) as folder:
        folder.archive("users.csv", result.identity, "users.X.csv", spool)
        folder.write_bak("users.X.csv.result.json", b"{}")
    assert list(outside.iterdir()) == []
    assert (drop / BAK).is_dir()
    assert not (drop / BAK).is_symlink()
    assert sorted(p.name for p in (drop / BAK).iterdir()) == [
        "users.X.csv",
        "users.X.csv.result.json",
    ]
    assert [p.name.startswith(".bak.not-a-folder.") for p in drop.iterdir() if p.name != BAK] == [
        True
    ]


def test_quarantine_moves_the_link_itself(drop: Path, tmp_path: Path) -> None:
    """A refused symlink moves into .bak as a link; its target is untouched."""
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    (drop / "evil.csv").symlink_to(secret)
    with DropFolder(drop) as folder:
        assert folder.quarantine("evil.csv", "evil.X.csv.refused")
        assert not folder.quarantine("evil.csv", "again.refused")
    moved = drop / BAK / "evil.X.csv.refused"
    assert moved.is_symlink()
    assert secret.read_text() == "s"
    assert not (drop / "evil.csv").exists()


def test_quarantine_of_a_fifo_and_a_folder(drop: Path) -> None:
    """Special entries move too, without being opened."""
    os.mkfifo(drop / "pipe.csv")
    (drop / "sub").mkdir()
    with DropFolder(drop) as folder:
        assert folder.quarantine("pipe.csv", "pipe.refused")
        assert folder.quarantine("sub", "sub.refused")
    assert sorted(p.name for p in (drop / BAK).iterdir()) == ["pipe.refused", "sub.refused"]


def test_entries_skip_bak_and_do_not_follow_links(drop: Path, tmp_path: Path) -> None:
    """Listing shows every entry but .bak, each with its own status."""
    (drop / BAK).mkdir()
    (drop / "a.csv").write_text("x")
    (drop / "l.csv").symlink_to(tmp_path / "missing")
    with DropFolder(drop) as folder:
        names = sorted(name for name, _ in folder.entries())
    assert names == ["a.csv", "l.csv"]
