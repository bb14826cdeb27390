"""`watcher demo`, the README's first command, as a new user runs it."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from watcher.cli import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def demo(folder: Path) -> subprocess.CompletedProcess[str]:
    """Run the demo in ``folder``."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", "demo", "--dir", str(folder)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def test_the_demo_imports_reports_and_archives_and_prints_nothing_else(tmp_path: Path) -> None:
    """Six users imported, one report, five files in .bak; nothing on stderr."""
    result = demo(tmp_path / "demo")
    assert (result.returncode, result.stderr) == (EXIT_OK, "")
    assert "Imported users: 6 in the embedded store" in result.stdout
    assert "Subject: User import: 8 of 14 users not imported" in result.stdout
    assert len(list((tmp_path / "demo" / "drop" / ".bak").iterdir())) == 5


def test_a_second_demo_starts_from_a_clean_folder(tmp_path: Path) -> None:
    """The second run clears the first's files and shows only its own."""
    assert demo(tmp_path / "demo").returncode == EXIT_OK
    again = demo(tmp_path / "demo")
    assert (again.returncode, again.stderr) == (EXIT_OK, "")
    assert again.stdout.startswith(f"Cleared the earlier demo in {tmp_path / 'demo'}.\n")
    assert len(list((tmp_path / "demo" / "drop" / ".bak").iterdir())) == 5
    assert len(list((tmp_path / "demo" / "state" / "outbox").iterdir())) == 1


def test_a_folder_that_is_not_a_demo_is_left_alone(tmp_path: Path) -> None:
    """A non-empty folder without an earlier demo is refused, untouched."""
    (tmp_path / "mine.txt").write_text("keep me")
    result = demo(tmp_path)
    assert result.returncode == EXIT_USAGE
    assert "is not empty and holds no earlier demo" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_a_demo_folder_that_is_a_file_is_one_clear_line(tmp_path: Path) -> None:
    """--dir naming a file: refused with a sentence, no traceback."""
    (tmp_path / "file").write_text("")
    result = demo(tmp_path / "file")
    assert (result.returncode, "Traceback" in result.stderr) == (EXIT_USAGE, False)
    assert result.stdout == f"{tmp_path / 'file'} is not a folder: choose another with --dir.\n"
