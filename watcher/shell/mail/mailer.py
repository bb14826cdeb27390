"""Delivering failure reports: the outbox, and SMTP.

Every report is first written to ``STATE/outbox/<id>.eml`` and recorded in the
journal; only then is it sent. Without an ``[email]`` section it stays there:
a real, readable file. With one, each queued message is sent over SMTP (plain,
STARTTLS or TLS, optional login) with retries; once the server accepts it, the
journal records it as sent and the file moves to ``STATE/sent/``. A server
that stays down leaves the message queued for the next run; a server that
refuses the message for good (5xx) marks it rejected and an operator decides.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import threading
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import tenacity

from watcher.core.reporting import without_attachments
from watcher.core.states import MessageState
from watcher.errors import SecretUnavailableError
from watcher.shell import faults
from watcher.shell.files import replace_file

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from email.message import EmailMessage

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config, EmailConfig
    from watcher.shell.journal import Journal
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.statedir import StateDir

__all__ = [
    "Mailer",
    "Verdict",
    "classify",
    "deliver",
    "queue_message",
    "requeue_after_crash",
    "write_outbox",
]

Verdict = Literal["retry", "defer", "reject"]


def write_outbox(outbox: Path, message_id: str, message: EmailMessage) -> Path:
    """Write ``message`` as ``outbox/<id>.eml``, whole or not at all; its path."""
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{message_id}.eml"
    replace_file(outbox, path.name, message.as_bytes(policy=policy.SMTP))
    return path


def queue_message(
    ctx: BatchContext,
    message: EmailMessage,
    *,
    message_id: str,
    batch_id: str,
    tenant: str,
    files: int | None = None,
) -> None:
    """Put ``message`` in the outbox and the journal, where delivery finds it; once per id.

    A message written again after a crash (the same id) replaces its file and
    is journaled once. ``files``: how many checked files it tells of.
    """
    path = write_outbox(ctx.state.outbox, message_id, message)
    faults.checkpoint("report-written")
    ctx.journal.messages.queue(
        message_id=message_id, batch_id=batch_id, tenant=tenant, path=str(path), now=ctx.clock()
    )
    attachments = sum(1 for _ in message.iter_attachments())
    ctx.log.info("mail.queued", message_id=message_id, attachments=attachments, files=files)


def deliver(
    config: Config,
    journal: Journal,
    state: StateDir,
    log: FilteringBoundLogger,
    tenants: Collection[str] | None = None,
    *,
    stop: threading.Event | None = None,
) -> int:
    """Send what the outbox holds (of ``tenants`` only, if given); how many still wait.

    Instances sharing a database each send their own tenants' mail, so a
    tenant taken over can have what its dead owner was sending queued again
    without racing a live sender. Once ``stop`` is set, no message is begun
    and no retry waits: the rest stays queued for the next start.
    """
    return Mailer(config.email, log=log, stop=stop).deliver(journal, state.sent, tenants)


def requeue_after_crash(
    journal: Journal, log: FilteringBoundLogger, tenant: str | None = None
) -> None:
    """Queue again what a process that died was sending (all, or a tenant's taken over)."""
    requeued = journal.messages.requeue_sending(tenant)
    if requeued:
        log.warning("mail.requeued", messages=requeued, tenant=tenant)


def classify(error: BaseException) -> Verdict:
    """What to do after an SMTP failure: retry now, leave for later, or give up."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return "retry" if codes and all(400 <= c < 500 for c in codes) else "reject"  # noqa: PLR2004
    if isinstance(error, smtplib.SMTPAuthenticationError | SecretUnavailableError | ssl.SSLError):
        return "defer"
    if isinstance(error, smtplib.SMTPResponseException):
        return "retry" if 400 <= error.smtp_code < 500 else "reject"  # noqa: PLR2004
    if isinstance(error, smtplib.SMTPException | OSError):
        return "retry"
    return "defer"


class _RetryNowError(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class Mailer:
    """Sends what waits in the outbox, when an SMTP server is configured."""

    def __init__(
        self,
        config: EmailConfig | None,
        *,
        log: FilteringBoundLogger,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.log = log
        self.stop = stop or threading.Event()
        # A retry's wait ends at once when the service is asked to stop.
        self.sleep = sleep or self._wait
        self.clock = clock

    def _wait(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def deliver(
        self, journal: Journal, sent_dir: Path, tenants: Collection[str] | None = None
    ) -> int:
        """Send every queued message (of ``tenants``); how many remain queued afterwards."""
        self._finish_moves(journal, sent_dir)
        queued = [
            m
            for m in journal.messages.in_state(MessageState.QUEUED)
            if tenants is None or m.tenant in tenants
        ]
        if self.config is None:
            for record in queued:
                self.log.info(
                    "mail.kept_in_outbox",
                    tenant=record.tenant,
                    message_id=record.id,
                    path=record.path,
                )
            return len(queued)
        waiting = 0
        for record in queued:
            if self.stop.is_set():
                return len(queued) - queued.index(record) + waiting
            if not journal.messages.claim(record.id):
                continue
            log = self.log.bind(tenant=record.tenant, message_id=record.id)
            path = Path(record.path)
            try:
                with path.open("rb") as handle:
                    message = BytesParser(policy=policy.default).parse(handle)
            except OSError as exc:
                log.error("mail.unreadable", error=exc.strerror)
                journal.messages.mark(
                    record.id, MessageState.REJECTED, self.clock(), error=str(exc)
                )
                continue
            verdict, detail = self._try(message, log)
            if verdict == "reject" and _too_large(detail) and message.is_multipart():
                # Refused for its size: the same report without attachments, at once.
                message = without_attachments(message)
                replace_file(path.parent, path.name, message.as_bytes(policy=policy.SMTP))
                log.warning("mail.shrunk", error=detail)
                verdict, detail = self._try(message, log)
            if verdict is None:
                journal.messages.mark(record.id, MessageState.SENT, self.clock())
                faults.checkpoint("mail-sent")
                sent_dir.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):  # another instance moved it
                    path.replace(sent_dir / path.name)
                log.info("mail.sent", attempts=record.attempts + 1)
            elif verdict == "reject":
                journal.messages.mark(record.id, MessageState.REJECTED, self.clock(), error=detail)
                log.error("mail.rejected", error=detail)
            else:
                journal.messages.mark(record.id, MessageState.QUEUED, self.clock(), error=detail)
                log.warning("mail.deferred", error=detail)
                waiting += 1
        return waiting

    @staticmethod
    def _finish_moves(journal: Journal, sent_dir: Path) -> None:
        """Move out of the outbox what the journal says was sent (a crash between)."""
        done = journal.messages.in_state(MessageState.SENT)
        sent = {Path(r.path).name for r in done}
        outbox = {Path(r.path).parent for r in done}
        for folder in outbox:
            for path in folder.glob("*.eml"):
                if path.name in sent:
                    sent_dir.mkdir(parents=True, exist_ok=True)
                    with contextlib.suppress(FileNotFoundError):  # another instance moved it
                        path.replace(sent_dir / path.name)

    def _try(self, message: EmailMessage, log: FilteringBoundLogger) -> tuple[Verdict | None, str]:
        """Send with retries; (None, "") when sent, else the verdict and why."""
        assert self.config is not None  # noqa: S101 - deliver checked it
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.config.max_attempts)
            | tenacity.stop_when_event_set(self.stop),
            wait=tenacity.wait_exponential_jitter(initial=1, max=30, jitter=1),
            retry=tenacity.retry_if_exception_type(_RetryNowError),
            sleep=self.sleep,
            before_sleep=lambda state: log.warning(
                "mail.retry_scheduled",
                attempt=state.attempt_number,
                wait=round(state.upcoming_sleep, 3),
                error=str(state.outcome.exception() if state.outcome else ""),
            ),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    try:
                        self._send(message)
                    except Exception as exc:  # classified below; unknown ones defer
                        verdict = classify(exc)
                        if verdict == "retry":
                            raise _RetryNowError(exc) from exc
                        return verdict, _describe(exc)
        except _RetryNowError as exc:
            return "defer", _describe(exc.cause)
        return None, ""

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        assert config is not None  # noqa: S101 - deliver checked it
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
        smtp: smtplib.SMTP
        if config.ssl:
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with smtp:
            if config.starttls:
                smtp.starttls(context=context)
            if config.username is not None and config.password is not None:
                smtp.login(config.username, config.password.reveal())
            smtp.send_message(message)


def _too_large(detail: str) -> bool:
    """Whether a refusal says the message is too large (552, or the status 5.3.4)."""
    return detail.startswith("552 ") or "5.3.4" in detail


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = (
            error.smtp_error.decode(errors="replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        return f"{error.smtp_code} {text}"
    if isinstance(error, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(error).__name__}: {error}"
