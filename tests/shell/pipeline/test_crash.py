"""Killing `watcher process` at every step, then running it again.

Each step of a batch is a checkpoint (see watcher.shell.faults); the first run dies
there by SIGKILL, the second must finish the batch with every valid user
imported exactly once, one failure report sent, and each file archived once.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from email import policy
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import Site, users_csv
from tests.support.apiserver import ApiServer, Reply
from tests.support.smtpserver import SmtpServer
from watcher.cli import EXIT_OK
from watcher.shell.faults import STEPS
from watcher.shell.pipeline.turns import MOST_UNRECORDED

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration
FILE_A = users_csv(1300, bad_every=50)
FILE_B = users_csv(10, start=5000)
VALID = sorted(
    {f"U-{i:05d}" for i in range(1300) if i % 50 != 0} | {f"U-{i:05d}" for i in range(5000, 5010)}
)


@pytest.mark.parametrize("step", STEPS)
def test_a_kill_at_any_step_loses_nothing_and_doubles_nothing(tmp_path: Path, step: str) -> None:
    """After a SIGKILL at ``step`` and a second run, the batch ends exactly once."""
    with SmtpServer() as smtp:
        site = Site(tmp_path, smtp_port=smtp.port)
        site.drop_file("a.csv", FILE_A)
        site.drop_file("b.csv", FILE_B)
        killed = site.process("a.csv", "b.csv", env={"WATCHER_KILL_AT": step})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        again = site.process("a.csv", "b.csv")
        assert again.returncode == EXIT_OK, again.stderr
    users = site.users()
    assert sorted(users) == VALID
    assert {imports for _, imports in users.values()} == {1}
    (message,) = smtp.messages
    (attachment,) = message.iter_attachments()
    assert len(attachment.get_content().splitlines()) == 1 + 26
    assert sorted(p.name for p in site.drop.iterdir()) == [".bak"]
    archives = sorted(p.name for p in site.bak.iterdir())
    assert len(archives) == 5  # a: file, result, failures; b: file, result
    assert sorted(n.split(".")[0] for n in archives if n.endswith(".csv.result.json")) == [
        "a",
        "b",
    ]
    with sqlite3.connect(site.state / "journal.sqlite") as db:
        assert db.execute("SELECT DISTINCT state FROM batches").fetchall() == [("done",)]
        assert db.execute(
            "SELECT state, COUNT(*) FROM rows GROUP BY state ORDER BY state"
        ).fetchall() == [
            ("failed", 26),
            ("imported", len(VALID)),
        ]
    assert site.outbox() == []
    assert list((site.state / "spool").glob("*/*")) == []


def test_a_kill_during_api_import_resends_only_what_was_in_flight(tmp_path: Path) -> None:
    """With the API, rows whose outcome was not journaled are sent again, once; no more."""

    def respond(_: dict[str, Any], __: int) -> Reply:
        return Reply()

    with ApiServer(respond) as api:
        site = Site(tmp_path, api_url=api.url)
        site.drop_file("a.csv", FILE_A)
        killed = site.process("a.csv", env={"WATCHER_KILL_AT": "imported-some"})
        assert killed.returncode == -signal.SIGKILL
        assert site.process("a.csv").returncode == EXIT_OK
    ids = api.ids()
    expected = sorted(i for i in VALID if int(i[2:]) < 1300)
    assert sorted(set(ids)) == expected
    # Killed just after the first 500 outcomes were recorded: sent again are
    # those answered while they were written (requests fly while the batch's
    # thread records) and those in flight; each once more at most.
    assert max(Counter(ids).values()) <= 2
    assert len(ids) - len(expected) < 500


def test_a_file_that_kills_validation_twice_is_set_aside_and_the_batch_ends(
    tmp_path: Path,
) -> None:
    """Two deaths while validating a file: the third run sets it aside and finishes the rest."""
    site = Site(tmp_path)
    site.drop_file("a.csv", FILE_A)
    for _ in range(2):
        killed = site.process("a.csv", env={"WATCHER_KILL_AT": "validating"})
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    again = site.process()
    assert again.returncode == EXIT_OK, again.stderr
    events = {e["event"]: e for e in site.events(again)}
    assert (events["file.set_aside"]["code"], events["file.set_aside"]["attempts"]) == (
        "file_unprocessable",
        2,
    )
    assert site.users() == {}
    (path,) = site.outbox()
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert message["Subject"] == "User import: 1 file not imported"
    body = message.get_body()
    assert body is not None
    assert "failed while reading it 2 times" in body.get_content()
    assert sorted(p.name for p in site.drop.iterdir()) == [".bak"]
    assert len(list(site.bak.glob("a.*.csv"))) == 1
    site.drop_file("b.csv", FILE_B)
    later = site.process("b.csv")
    assert later.returncode == EXIT_OK, later.stderr
    assert len(site.users()) == 10


@pytest.mark.parametrize("step", ["answered", "imported-some"])
def test_the_service_killed_mid_import_resends_each_row_once_at_most(
    tmp_path: Path, step: str
) -> None:
    """The running service (a run in turns, its push on the loop) killed mid-push, restarted."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url, service='batch_window = "1s"\nsettle_time = 0.5')
        site.drop_file("a.csv", FILE_A)
        killed = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
            capture_output=True, text=True, check=False, timeout=120,
            env={**os.environ, "WATCHER_KILL_AT": step},
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        again = subprocess.run(
            [sys.executable, "-m", "watcher", "run", "--once", "--config", str(site.config)],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert again.returncode == EXIT_OK, again.stderr
    ids = api.ids()
    expected = sorted(i for i in VALID if int(i[2:]) < 1300)
    assert sorted(set(ids)) == expected
    assert max(Counter(ids).values()) <= 2  # each row once more at most
    # Sent again: what was answered and not yet recorded. The push waits while
    # MOST_UNRECORDED answers wait for the journal; a chunk being recorded and
    # the requests in flight (4 at most here) come on top.
    assert len(ids) - len(expected) <= 2 * (MOST_UNRECORDED + 4) + 4
    assert not (site.drop / "a.csv").exists()
