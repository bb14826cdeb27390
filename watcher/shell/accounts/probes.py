"""``watcher check-config``'s look at the servers a configuration points at.

Each probe connects and says hello, and sends nothing a server would act on:
the SMTP server gets EHLO (and STARTTLS and the login, if configured) then
QUIT, no message; each API endpoint gets a TCP connection (and a TLS
handshake for https), no request, so no user is created or changed. Each
problem is one sentence naming the key it comes from.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from watcher.errors import SecretUnavailableError

if TYPE_CHECKING:
    from watcher.config import ApiConfig, Config, EmailConfig

__all__ = ["probe"]

_TIMEOUT = 10.0


def probe(config: Config) -> list[str]:
    """Problems found by connecting to the SMTP server and each API; empty when all answer."""
    problems: list[str] = []
    if config.email is not None:
        problems.extend(_smtp(config.email))
    for tenant in config.tenants:
        if tenant.api is not None:
            problems.extend(_api(f'tenant "{tenant.name}".api.url', tenant.api))
    return problems


def _reason(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        text = error.smtp_error
        said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return f"{error.smtp_code} {said}"
    if isinstance(error, socket.gaierror):
        return "the name does not resolve"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}"


def _smtp(email: EmailConfig) -> list[str]:
    where = f"email: {email.host}:{email.port}"
    timeout = min(email.timeout, _TIMEOUT)
    context = ssl.create_default_context(cafile=str(email.ca_file) if email.ca_file else None)
    try:
        server = (
            smtplib.SMTP_SSL(email.host, email.port, timeout=timeout, context=context)
            if email.ssl
            else smtplib.SMTP(email.host, email.port, timeout=timeout)
        )
    except (OSError, smtplib.SMTPException) as exc:
        return [f"{where}: cannot connect ({_reason(exc)})"]
    try:
        with server:
            server.ehlo()
            if email.starttls:
                server.starttls(context=context)
                server.ehlo()
            if email.username is not None and email.password is not None:
                server.login(email.username, email.password.reveal())
    except (OSError, smtplib.SMTPException, SecretUnavailableError) as exc:
        return [f"{where}: the server refused us ({_reason(exc)})"]
    return []


def _api(where: str, api: ApiConfig) -> list[str]:
    parts = urlsplit(api.url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    timeout = min(api.timeout, _TIMEOUT)
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            if parts.scheme == "https":
                with ssl.create_default_context().wrap_socket(connection, server_hostname=host):
                    pass
    except (OSError, ssl.SSLError) as exc:
        return [f"{where}: cannot connect to {host}:{port} ({_reason(exc)})"]
    return []
