"""Delivering failure reports through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import dataclasses
import threading
import time
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
import structlog
from structlog.testing import capture_logs

from tests.support.smtpserver import PASSWORD, USER, SmtpServer, free_port, make_certificate
from watcher.config import EmailConfig, Secret
from watcher.core.states import MessageState
from watcher.shell.journal import Journal
from watcher.shell.mail.mailer import Mailer, write_outbox

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration


def message(number: int = 1) -> EmailMessage:
    """A small report."""
    m = EmailMessage()
    m["From"] = "admin@jcu.example"
    m["To"] = "registrar@jcu.example"
    m["Subject"] = f"User import: report {number}"
    m["Message-ID"] = f"<batch{number}.jcu@jcu.example>"
    m.set_content("Some users could not be imported.")
    m.add_attachment(b"a,b\r\n1,2\r\n", maintype="text", subtype="csv", filename="failed.csv")
    return m


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    """A journal with two queued messages in its outbox."""
    j = Journal(tmp_path / "state" / "journal.sqlite")
    for n in (1, 2):
        path = write_outbox(tmp_path / "state" / "outbox", f"batch{n}", message(n))
        j.messages.queue(
            message_id=f"batch{n}", batch_id=f"batch{n}", tenant="jcu", path=str(path), now=float(n)
        )
    yield j
    j.close()


def mailer(port: int, **kwargs: object) -> Mailer:
    """A mailer for a loopback server that does not really wait between retries."""
    cfg = EmailConfig(host="127.0.0.1", port=port, timeout=5.0, **kwargs)  # type: ignore[arg-type]
    return Mailer(cfg, log=structlog.get_logger(), sleep=lambda _: None)


def test_plain_smtp_delivers_and_moves_to_sent(journal: Journal, tmp_path: Path) -> None:
    """Queued messages arrive with their attachment and move out of the outbox."""
    with SmtpServer() as server:
        assert mailer(server.port).deliver(journal, tmp_path / "state" / "sent") == 0
    assert [m["Subject"] for m in server.messages] == [
        "User import: report 1",
        "User import: report 2",
    ]
    attachment = next(server.messages[0].iter_attachments())
    assert attachment.get_filename() == "failed.csv"
    assert journal.messages.count(MessageState.SENT) == 2
    assert sorted(p.name for p in (tmp_path / "state" / "sent").iterdir()) == [
        "batch1.eml",
        "batch2.eml",
    ]
    assert list((tmp_path / "state" / "outbox").glob("*.eml")) == []


def test_delivering_again_sends_nothing_twice(journal: Journal, tmp_path: Path) -> None:
    """A second delivery run finds nothing queued."""
    with SmtpServer() as server:
        m = mailer(server.port)
        m.deliver(journal, tmp_path / "sent")
        m.deliver(journal, tmp_path / "sent")
    assert len(server.messages) == 2


def test_starttls_with_login(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARTTLS and a login from the environment work against a verifying client."""
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
    with SmtpServer(tls="starttls", certificate=(cert, key), login=True) as server:
        m = mailer(
            server.port,
            starttls=True,
            username=USER,
            password=Secret(env="SMTP_PASSWORD"),
            ca_file=cert,
        )
        assert m.deliver(journal, tmp_path / "sent") == 0
    assert len(server.messages) == 2


def test_implicit_tls(journal: Journal, tmp_path: Path) -> None:
    """SMTP over TLS from the first byte (port 465 style) works."""
    cert, key = make_certificate(tmp_path)
    with SmtpServer(tls="ssl", certificate=(cert, key)) as server:
        assert mailer(server.port, ssl=True, ca_file=cert).deliver(journal, tmp_path / "sent") == 0
    assert len(server.messages) == 2


def test_a_wrong_password_keeps_messages_queued(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An authentication failure is the operator's to fix; nothing is lost."""
    cert, key = make_certificate(tmp_path)
    monkeypatch.setenv("SMTP_PASSWORD", "wrong")
    with (
        SmtpServer(tls="starttls", certificate=(cert, key), login=True) as server,
        capture_logs() as logs,
    ):
        m = mailer(
            server.port, starttls=True, username=USER, password=Secret(env="SMTP_PASSWORD"),
            ca_file=cert, max_attempts=1,
        )  # fmt: skip
        m.config = dataclasses.replace(m.config, timeout=2.0)  # type: ignore[type-var]
        assert m.deliver(journal, tmp_path / "sent") == 2
    assert server.messages == []
    assert journal.messages.count(MessageState.QUEUED) == 2
    assert [e["event"] for e in logs].count("mail.deferred") == 2


def test_a_temporary_refusal_is_retried_then_deferred(journal: Journal, tmp_path: Path) -> None:
    """451 is retried up to the limit and the message waits for the next run."""
    with SmtpServer() as server:
        server.recorder.mode = "defer"
        m = mailer(server.port, max_attempts=3)
        with capture_logs() as logs:
            assert m.deliver(journal, tmp_path / "sent") == 2
        assert server.recorder.attempts == 6
        assert [e["event"] for e in logs].count("mail.retry_scheduled") == 4
        server.recorder.mode = "accept"
        assert m.deliver(journal, tmp_path / "sent") == 0
    assert len(server.messages) == 2


def test_a_dropped_connection_is_retried(journal: Journal, tmp_path: Path) -> None:
    """A server that hangs up mid-message is tried again."""
    with SmtpServer() as server:
        server.recorder.mode = "drop"
        m = mailer(server.port, max_attempts=2)
        assert m.deliver(journal, tmp_path / "sent") == 2
        server.recorder.mode = "accept"
        assert m.deliver(journal, tmp_path / "sent") == 0
    assert len(server.messages) == 2


def test_a_permanent_refusal_marks_the_message_rejected(journal: Journal, tmp_path: Path) -> None:
    """554 will not change by retrying: the message is marked rejected and kept."""
    with SmtpServer() as server:
        server.recorder.mode = "reject"
        with capture_logs() as logs:
            assert mailer(server.port).deliver(journal, tmp_path / "sent") == 0
    assert journal.messages.count(MessageState.REJECTED) == 2
    assert [r.last_error for r in journal.messages.in_state(MessageState.REJECTED)] == [
        "554 5.7.1 message refused"
    ] * 2
    assert {e["event"] for e in logs} == {"mail.rejected"}
    assert len(list((tmp_path / "state" / "outbox").glob("*.eml"))) == 2


def test_a_server_that_is_down_leaves_mail_queued(journal: Journal, tmp_path: Path) -> None:
    """Nothing listening: the messages stay queued, and go once it is back."""
    port = free_port()
    assert mailer(port, max_attempts=2).deliver(journal, tmp_path / "sent") == 2
    assert journal.messages.count(MessageState.QUEUED) == 2


def test_without_smtp_messages_stay_in_the_outbox(journal: Journal, tmp_path: Path) -> None:
    """With no [email] section the outbox is where reports are kept."""
    with capture_logs() as logs:
        assert Mailer(None, log=structlog.get_logger()).deliver(journal, tmp_path / "sent") == 2
    assert [e["event"] for e in logs] == ["mail.kept_in_outbox"] * 2


def test_two_deliverers_at_once_send_each_message_once(tmp_path: Path) -> None:
    """A batch worker and the rescan's mail worker racing on a slow server: no duplicates."""
    state = tmp_path / "state"
    seed = Journal(state / "journal.sqlite")
    for n in range(1, 7):
        path = write_outbox(state / "outbox", f"batch{n}", message(n))
        seed.messages.queue(
            message_id=f"batch{n}", batch_id=f"batch{n}", tenant="jcu", path=str(path), now=float(n)
        )
    seed.close()
    with SmtpServer() as server:
        server.recorder.delay = 0.3

        def deliver() -> None:
            journal = Journal(state / "journal.sqlite")
            try:
                mailer(server.port).deliver(journal, state / "sent")
            finally:
                journal.close()

        workers = [threading.Thread(target=deliver) for _ in range(2)]
        with capture_logs() as captured:
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(30)
    ids = sorted(m["Message-ID"] for m in server.messages)
    assert ids == sorted(f"<batch{n}.jcu@jcu.example>" for n in range(1, 7))
    events = [e["event"] for e in captured]
    assert (events.count("mail.sent"), "mail.unreadable" in events) == (6, False)
    assert {e["tenant"] for e in captured if e["event"] == "mail.sent"} == {"jcu"}
    check = Journal(state / "journal.sqlite")
    assert [m.id for m in check.messages.in_state(MessageState.SENT)] == [
        f"batch{n}" for n in range(1, 7)
    ]
    check.close()


def test_a_message_being_sent_when_the_process_died_is_queued_again(journal: Journal) -> None:
    """A claim left by a dead deliverer goes back to the queue at the next start."""
    assert journal.messages.claim("batch1")
    assert not journal.messages.claim("batch1")
    assert [m.id for m in journal.messages.in_state(MessageState.QUEUED)] == ["batch2"]
    assert journal.messages.requeue_sending() == 1
    assert [m.id for m in journal.messages.in_state(MessageState.QUEUED)] == ["batch1", "batch2"]


def test_a_message_refused_as_too_large_goes_again_without_attachments(
    tmp_path: Path,
) -> None:
    """552 for size: the same report, its attachment left out and said, is sent at once."""
    journal = Journal(tmp_path / "state" / "journal.sqlite")
    try:
        big = message(3)
        big.add_attachment(b"x" * 300_000, maintype="text", subtype="csv", filename="big.csv")
        path = write_outbox(tmp_path / "state" / "outbox", "batch3", big)
        journal.messages.queue(
            message_id="batch3", batch_id="batch3", tenant="jcu", path=str(path), now=3.0
        )
        with SmtpServer(size_limit=100_000) as server, capture_logs() as logs:
            assert mailer(server.port).deliver(journal, tmp_path / "state" / "sent") == 0
        assert journal.messages.count(MessageState.SENT) == 1
    finally:
        journal.close()
    (sent,) = server.messages
    assert list(sent.iter_attachments()) == []
    assert sent["Message-ID"] == "<batch3.jcu@jcu.example>"
    text = sent.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Your mail server refused this message as too large")
    assert "(failed.csv, big.csv)" in text
    assert "Some users could not be imported." in text
    (shrunk,) = [e for e in logs if e["event"] == "mail.shrunk"]
    assert shrunk["error"].startswith("552 ")


def test_a_stop_request_ends_delivery_at_once_and_keeps_the_rest_queued(
    journal: Journal, tmp_path: Path
) -> None:
    """With the server down and retries waiting 30 s, a stop ends delivery within a second."""
    stop = threading.Event()
    cfg = EmailConfig(host="127.0.0.1", port=free_port(), timeout=5.0, max_attempts=5)
    sender = Mailer(cfg, log=structlog.get_logger(), stop=stop)
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    waiting = sender.deliver(journal, tmp_path / "sent")
    assert time.monotonic() - started < 3
    assert waiting == 2
    assert journal.messages.count(MessageState.QUEUED) == 2
