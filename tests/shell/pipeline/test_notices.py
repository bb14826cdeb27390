"""Notices for every import: a short summary when nothing failed, to every address asked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support import Site, users_csv
from tests.support.smtpserver import SmtpServer
from watcher.cli import EXIT_OK

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
ALWAYS = 'notify = "always"\nnotify_to = ["it-list@jcu.example"]'


def test_with_notify_always_a_clean_batch_sends_a_short_summary(tmp_path: Path) -> None:
    """Everything imported: a summary per file, to both addresses, no attachment."""
    with SmtpServer() as smtp:
        site = Site(tmp_path, smtp_port=smtp.port, tenant=ALWAYS)
        site.drop_file("users.csv", users_csv(3))
        assert site.process("users.csv").returncode == EXIT_OK
        site.drop_file("again.csv", users_csv(3))
        assert site.process("again.csv").returncode == EXIT_OK
    first, second = smtp.messages
    assert first["Subject"] == "User import: all 3 users imported"
    assert first["To"] == "registrar@jcu.example, it-list@jcu.example"
    assert list(first.iter_attachments()) == []
    body = first.get_body()
    assert body is not None
    assert (
        "users.csv: 3 rows, 3 imported, 0 already up to date, 0 not imported." in body.get_content()
    )
    assert second["Subject"] == "User import: 3 users up to date"


def test_by_default_a_clean_batch_sends_nothing(tmp_path: Path) -> None:
    """Notify = "failures": no news is good news, as before."""
    with SmtpServer() as smtp:
        site = Site(tmp_path, smtp_port=smtp.port)
        site.drop_file("users.csv", users_csv(3))
        assert site.process("users.csv").returncode == EXIT_OK
    assert smtp.messages == []


def test_failure_reports_go_to_notify_to_as_well(tmp_path: Path) -> None:
    """A failed row: the report goes to the failed-import address and the list."""
    with SmtpServer() as smtp:
        site = Site(tmp_path, smtp_port=smtp.port, tenant=ALWAYS)
        site.drop_file("users.csv", users_csv(5, bad_every=5))
        assert site.process("users.csv").returncode == EXIT_OK
    (report,) = smtp.messages
    assert report["Subject"] == "User import: 1 of 5 users not imported"
    assert report["To"] == "registrar@jcu.example, it-list@jcu.example"
