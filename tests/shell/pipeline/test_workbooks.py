"""Workbooks through the whole pipeline: imported, reported, checked, as a CSV would be.

Each test runs ``watcher`` as a separate process against the loopback API.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import pytest

from tests.core.test_sheets import HEADER, workbook
from tests.support import Site
from tests.support.apiserver import ApiServer
from watcher.cli import EXIT_OK

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
ROWS: list[list[Any]] = [
    HEADER,
    ["S-1", "Ann", "a@jcu.example", dt.date(2004, 3, 17), 3],
    [1234, "Bob", "not-an-email", dt.date(2001, 1, 2), 4],
    ["S-3", "Cé", "c@jcu.example", "", 1],
]


def test_a_workbook_is_imported_and_its_failed_rows_reported_as_csv(tmp_path: Path) -> None:
    """Two users sent (dates in ISO form), the third reported in a CSV, the notes in both."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url)
        site.drop_file("users.xlsx", workbook(("Users", ROWS)))
        done = site.process("users.xlsx")
        assert done.returncode == EXIT_OK, done.stderr
        sent = sorted((r["unique_id"], r.get("date_of_birth")) for r in api.requests)
    assert sent == [("S-1", "2004-03-17"), ("S-3", None)]
    (result_path,) = site.bak.glob("users.*.xlsx.result.json")
    document = json.loads(result_path.read_text())
    assert (document["encoding"], document["rows"]["failed"]) == ("xlsx", 1)
    assert any("row 3" in note for note in document["notes"])
    (report,) = site.outbox()
    message = BytesParser(policy=policy.default).parsebytes(report.read_bytes())
    text = message.get_body().get_content()  # type: ignore[union-attr]
    assert "Note: Column 'unique_id' holds numbers where text is expected (row 3)" in text
    (attached,) = list(message.iter_attachments())
    assert attached.get_filename() == "failed-users.csv"
    data = attached.get_payload(decode=True)
    assert isinstance(data, bytes)
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[1].startswith("1234,Bob,not-an-email,2001-01-02,4,3,invalid_email,email,")


def test_the_check_lane_answers_a_workbook(tmp_path: Path) -> None:
    """check/users.xlsx: counts and notes in .check.json, nothing imported."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url)
        check = site.drop / "check"
        check.mkdir()
        (check / "users.xlsx").write_bytes(workbook(("Users", ROWS)))
        once = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "--once", "--config", str(site.config)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert once.returncode == EXIT_OK, once.stderr
        assert api.requests == []
    answer = json.loads((check / "users.xlsx.check.json").read_text())
    assert (answer["rows"]["total"], answer["rows"]["failed"], answer["encoding"]) == (3, 1, "xlsx")
    assert answer["notes"][0] == "Read from its sheet 'Users'."
    assert answer["changes"]["new"] == 2


def test_a_workbook_saved_under_a_csv_name_is_imported_all_the_same(tmp_path: Path) -> None:
    """users.csv holding an .xlsx: read by its bytes, not refused as binary."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url)
        site.drop_file("users.csv", workbook(("Users", ROWS[:2])))
        done = site.process("users.csv")
        assert done.returncode == EXIT_OK, done.stderr
        assert [r["unique_id"] for r in api.requests] == ["S-1"]
