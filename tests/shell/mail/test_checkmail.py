"""Check answers by email: gathered, one message a while, bounded in size and in state."""

from __future__ import annotations

import email
from email import policy
from typing import TYPE_CHECKING

import structlog

from tests.support import Site
from watcher.config import load_config
from watcher.core.notices import CheckAnswer
from watcher.core.reporting import ATTACHMENT_LIMIT
from watcher.core.states import MessageState
from watcher.shell.journal import Journal
from watcher.shell.mail import checkmail
from watcher.shell.pipeline.context import BatchContext
from watcher.shell.statedir import StateDir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from email.message import EmailMessage
    from pathlib import Path

    import pytest


class Clock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        """The time the test set."""
        return self.now


def context(site: Site, journal: Journal, clock: Clock) -> BatchContext:
    """A context on the site's journal with the test's clock."""
    return BatchContext(
        config=load_config(site.config),
        journal=journal,
        state=StateDir(site.state),
        log=structlog.get_logger(),
        clock=clock,
    )


def answer(n: int, *, failed: int = 1) -> CheckAnswer:
    """The answer for file ``n`` with ``failed`` rows of four failing."""
    return CheckAnswer(
        name=f"f{n}.csv",
        rows=4,
        failed=failed,
        reasons=((failed, '"Email" is not a valid email address'),) if failed else (),
        answer=f"f{n}.csv.check.json",
        answer_csv=f"f{n}.csv.check.csv" if failed else None,
        attachment=f"failed-f{n}.csv" if failed else None,
    )


def messages(site: Site) -> Iterator[EmailMessage]:
    """The check messages in the outbox, oldest first."""
    paths = (site.state / "outbox").glob("check-*.eml")
    for path in sorted(paths, key=lambda p: p.stat().st_mtime_ns):
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        yield parsed


def test_answers_close_together_are_one_message_and_later_ones_wait(tmp_path: Path) -> None:
    """Twelve answers: one message, ten lists attached; the next waits for check_mail_every."""
    site = Site(tmp_path)
    clock = Clock()
    journal = Journal(StateDir(site.state).journal)
    try:
        ctx = context(site, journal, clock)
        tenant = ctx.config.tenant("jcu")
        for n in range(12):
            checkmail.add(ctx, tenant, f"p{n:02d}", answer(n), b"row\r\n")
        assert checkmail.flush(ctx, tenant) == 12
        checkmail.add(ctx, tenant, "p99", answer(99, failed=0), None)
        clock.now += 59
        assert checkmail.flush(ctx, tenant) == 0  # within the minute: folded into the next
        clock.now += 1
        assert checkmail.flush(ctx, tenant) == 1
    finally:
        journal.close()
    first, second = messages(site)
    assert first["Subject"] == "Checks of 12 files: 12 would partly fail"
    assert len(list(first.iter_attachments())) == 10
    text = first.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "The rows that would fail are attached as failed-f0.csv, with why." in text
    assert "The rows that would fail are listed in check/f11.csv.check.csv." in text
    assert second["Subject"] == "Check of f99.csv: all 4 rows would import"
    assert list((site.state / "check-mail" / "jcu").glob("*.json")) == []


def test_a_message_made_again_after_a_crash_is_queued_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts left after their message was queued make the same message: one in the journal."""
    site = Site(tmp_path)
    clock = Clock()
    journal = Journal(StateDir(site.state).journal)
    try:
        ctx = context(site, journal, clock)
        tenant = ctx.config.tenant("jcu")
        checkmail.add(ctx, tenant, "p1", answer(1), b"row\r\n")
        monkeypatch.setattr(checkmail, "_forget", lambda *_: None)  # the crash: parts stay
        checkmail.flush(ctx, tenant)
        monkeypatch.undo()
        clock.now += 3600
        checkmail.flush(ctx, tenant)
        queued = journal.messages.counts_by_tenant([MessageState.QUEUED])
    finally:
        journal.close()
    assert queued == {"jcu": {"queued": 1}}
    assert len(list(messages(site))) == 1


def test_lists_waiting_in_the_state_folder_stay_within_one_messages_attachments(
    tmp_path: Path,
) -> None:
    """Lists past what one message attaches are not kept: the message names them in check/."""
    site = Site(tmp_path)
    journal = Journal(StateDir(site.state).journal)
    try:
        ctx = context(site, journal, Clock())
        tenant = ctx.config.tenant("jcu")
        big = b"x" * (ATTACHMENT_LIMIT // 2)
        for n in range(5):
            checkmail.add(ctx, tenant, f"p{n}", answer(n), big)
        kept = sum(p.stat().st_size for p in (site.state / "check-mail" / "jcu").glob("*.csv"))
    finally:
        journal.close()
    assert kept <= ATTACHMENT_LIMIT
