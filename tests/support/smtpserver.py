"""A real SMTP server (aiosmtpd) on loopback that can also refuse or drop mail."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support import require

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType

USER, PASSWORD = "watcher", "s3cret-pass"


class Recorder:
    """The server's handler: keeps messages, or answers as the test sets ``mode``.

    ``mode`` is ``"accept"``, ``"defer"`` (451), ``"reject"`` (554) or
    ``"drop"`` (close the connection during DATA).
    """

    def __init__(self) -> None:
        self.mode = "accept"
        self.messages: list[EmailMessage] = []
        self.attempts = 0
        self.delay = 0.0  # seconds before answering DATA, as a slow relay does

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802, ARG002 - aiosmtpd's hook
        """Keep, defer, reject or drop the message, as ``mode`` says."""
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "defer":
            return "451 4.3.0 try again later"
        if self.mode == "reject":
            return "554 5.7.1 message refused"
        if self.mode == "drop":
            if server.transport is not None:
                server.transport.close()
            return "421 closing"
        content = envelope.content or b""
        raw = content.encode() if isinstance(content, str) else content
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"


def authenticate(
    server: SMTP,  # noqa: ARG001
    session: Session,  # noqa: ARG001
    envelope: Envelope,  # noqa: ARG001
    mechanism: str,  # noqa: ARG001
    data: Any,
) -> AuthResult:
    """Accept the one test account."""
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


def free_port() -> int:
    """A loopback port nobody listens on (aiosmtpd 1.4 cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with openssl."""
    openssl = require("openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


class SmtpServer:
    """The server; ``tls`` is None, "starttls" or "ssl"."""

    def __init__(
        self,
        *,
        tls: str | None = None,
        certificate: tuple[Path, Path] | None = None,
        login: bool = False,
        size_limit: int | None = None,
    ) -> None:
        """A server; ``size_limit`` makes it advertise SIZE and refuse larger mail with 552."""
        self.recorder = Recorder()
        context = None
        if tls is not None:
            assert certificate is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*map(str, certificate))
        kwargs: dict[str, Any] = {}
        if size_limit is not None:
            kwargs.update(data_size_limit=size_limit)
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        if login:
            kwargs.update(
                authenticator=authenticate, auth_required=True, auth_require_tls=tls is not None
            )
        self.controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=free_port(),
            ssl_context=context if tls == "ssl" else None,
            **kwargs,
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self.controller.port)

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        """Messages accepted so far."""
        return self.recorder.messages
