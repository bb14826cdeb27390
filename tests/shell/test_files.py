"""Files written whole or not at all."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from watcher.shell.files import copy_file, replace_file

if TYPE_CHECKING:
    from pathlib import Path


def test_a_file_is_replaced_whole(tmp_path: Path) -> None:
    """The new content replaces the old under the same name, with the mode asked for."""
    (tmp_path / "status.json").write_text("old")
    replace_file(tmp_path, "status.json", b"new", mode=0o600)
    assert (tmp_path / "status.json").read_bytes() == b"new"
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == 0o600 & ~_umask()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["status.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    """The rename fails (a folder holds the name): the folder keeps only what it had."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("x")
    with pytest.raises(OSError):  # noqa: PT011 - the kernel's errno varies: EISDIR or ENOTEMPTY
        replace_file(tmp_path, "taken", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_a_folder_descriptor_works_as_the_folder(tmp_path: Path) -> None:
    """Written relative to an open folder, as .bak is, never through its path."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        replace_file(fd, "a.result.json", b"{}")
    finally:
        os.close(fd)
    assert (tmp_path / "a.result.json").read_bytes() == b"{}"


def test_a_copy_streams_the_whole_source(tmp_path: Path) -> None:
    """Three megabytes and a bit arrive whole under the new name."""
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "spool.csv").write_bytes(data)
    (tmp_path / "bak").mkdir()
    copy_file(tmp_path / "spool.csv", tmp_path / "bak", "users.csv")
    assert (tmp_path / "bak" / "users.csv").read_bytes() == data
    assert sorted(p.name for p in (tmp_path / "bak").iterdir()) == ["users.csv"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
