"""The command line as a user runs it: real processes, exit statuses, output."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support import OPSCOM_SCHEMA, ROOT, users_csv
from watcher.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from watcher.core.schema_parser import shipped_schema_path

if TYPE_CHECKING:
    from pathlib import Path

SAMPLE = ROOT / "watcher" / "cli" / "samples" / "new-users.csv"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m watcher`` with ``args`` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_default_schema_is_the_shipped_one() -> None:
    """Without --schema, validation uses schema/opscom-users.json."""
    assert shipped_schema_path() == OPSCOM_SCHEMA


@pytest.mark.integration
def test_validating_the_sample_lists_its_failures() -> None:
    """The README's first command shows a summary and exits 1."""
    result = run("validate", str(SAMPLE))
    assert result.returncode == EXIT_FAILED
    lines = result.stdout.splitlines()
    assert lines[0] == "new-users.csv: 11 rows, 3 valid, 8 failed (utf-8)"
    assert '  row  4  invalid_email    "Email" is not a valid email address' in lines
    assert "Most common reasons:" in lines


@pytest.mark.integration
def test_json_output_has_the_documented_members() -> None:
    """--json prints one object with counts, file errors and failures."""
    result = run("validate", "--json", str(SAMPLE))
    document = json.loads(result.stdout)
    assert result.returncode == EXIT_FAILED
    assert {
        "file_errors",
        "rows_total",
        "rows_valid",
        "rows_failed",
        "failures",
        "encoding",
    } <= set(document)
    assert (document["rows_total"], document["rows_valid"], document["rows_failed"]) == (11, 3, 8)
    assert document["failures"][1] == {
        "row": 4,
        "field": "email",
        "code": "invalid_email",
        "message": '"Email" is not a valid email address',
    }
    assert document["encoding"] == "utf-8"
    assert document["file_errors"] == []


@pytest.mark.integration
def test_a_clean_file_exits_zero(tmp_path: Path) -> None:
    """Every row valid means exit status 0."""
    path = tmp_path / "ok.csv"
    path.write_text("unique_id,email\nA-1,a@b.co\n")
    assert run("validate", str(path)).returncode == EXIT_OK


@pytest.mark.integration
def test_a_file_level_failure_is_json_with_a_code(tmp_path: Path) -> None:
    """An unreadable file exits 1 and names the problem."""
    path = tmp_path / "sheet.csv"
    path.write_bytes(b"PK\x03\x04" + bytes(64))
    result = run("validate", "--json", str(path))
    document = json.loads(result.stdout)
    assert result.returncode == EXIT_FAILED
    assert [e["code"] for e in document["file_errors"]] == ["file_binary"]


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that does not exist exits 2 with a message."""
    assert main(["validate", str(tmp_path / "nope.csv")]) == EXIT_USAGE
    assert "no such file" in capsys.readouterr().err


def test_a_broken_schema_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Validate refuses to run with an invalid schema and exits 2."""
    schema = tmp_path / "bad.json"
    schema.write_text('{"fields": [{"name": "a", "type": "blob"}]}')
    assert main(["validate", "--schema", str(schema), str(SAMPLE)]) == EXIT_USAGE
    assert "fields[0] 'a'.type: must be one of" in capsys.readouterr().err


@pytest.mark.integration
def test_unknown_arguments_exit_two() -> None:
    """Argparse's usage errors keep the documented status."""
    assert run("validate").returncode == EXIT_USAGE
    assert run("frobnicate").returncode == EXIT_USAGE


@pytest.mark.integration
def test_check_schema_reports_each_file(tmp_path: Path) -> None:
    """check-schema prints a line per good file and lists every problem of a bad one."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"fields": [{"name": "a", "constraints": {"maxLength": -1}}]}')
    good = run("check-schema", str(OPSCOM_SCHEMA))
    assert (good.returncode, good.stdout) == (
        EXIT_OK,
        f"{OPSCOM_SCHEMA}: ok, 24 fields, version 2026-11-22\n",
    )
    broken = run("check-schema", str(OPSCOM_SCHEMA), str(bad))
    assert broken.returncode == EXIT_USAGE
    assert "maxLength: must be a whole number of characters (got -1)" in broken.stderr


def test_a_file_that_cannot_be_read_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable file is one line naming it, not a traceback."""
    path = tmp_path / "users.csv"
    path.write_text("unique_id\nA\n")

    def refuse(_: object, **__: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("watcher.core.reading.read_table", refuse)
    assert main(["validate", str(path)]) == EXIT_USAGE
    assert capsys.readouterr().err == f"watcher: {path}: Permission denied\n"


def test_validate_refuses_a_file_over_max_rows_and_the_option_lifts_it(tmp_path: Path) -> None:
    """--max-rows 2 refuses three rows with file_too_many_rows; 3 lets them through."""
    path = tmp_path / "users.csv"
    path.write_text(users_csv(3))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["validate", "--json", "--max-rows", "2", str(path)]) == EXIT_FAILED
    assert json.loads(out.getvalue())["file_errors"][0]["code"] == "file_too_many_rows"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["validate", "--json", "--max-rows", "3", str(path)]) == EXIT_OK
    assert json.loads(out.getvalue())["rows_valid"] == 3
