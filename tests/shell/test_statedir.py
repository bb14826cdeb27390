"""The state folder: every path in it named in one place, and its lock."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from watcher.errors import AlreadyRunningError, StateError
from watcher.shell.statedir import StateDir

if TYPE_CHECKING:
    from pathlib import Path


def test_every_path_is_under_the_root(tmp_path: Path) -> None:
    """The journal, spool, outbox, sent, schemas, store, status and lock file."""
    state = StateDir(tmp_path)
    assert [
        state.journal,
        state.spool("jcu", "f1"),
        state.failures("jcu", "f1"),
        state.outbox,
        state.sent,
        state.schemas,
        state.users,
        state.status,
        state.lock_file,
    ] == [
        tmp_path / "journal.sqlite",
        tmp_path / "spool" / "jcu" / "f1.csv",
        tmp_path / "spool" / "jcu" / "f1.failures.csv",
        tmp_path / "outbox",
        tmp_path / "sent",
        tmp_path / "schemas",
        tmp_path / "users.sqlite",
        tmp_path / "status.json",
        tmp_path / "watcher.lock",
    ]


def test_the_lock_is_held_once_and_names_its_holder(tmp_path: Path) -> None:
    """A second lock is refused while the first is held; the lock file names the pid."""
    state = StateDir(tmp_path / "state")
    assert not state.locked()
    lock = state.lock()
    try:
        assert state.locked()
        assert state.lock_file.read_text() == f"{os.getpid()}\n"
        with pytest.raises(AlreadyRunningError, match=f"pid {os.getpid()}"):
            state.lock()
    finally:
        lock.release()
    assert not state.locked()


def test_a_state_folder_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    """A file where the folder should be: what is wrong and what to do."""
    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(StateError, match=r"cannot be used \(.*\): create it writable"):
        StateDir(tmp_path / "state").lock()
