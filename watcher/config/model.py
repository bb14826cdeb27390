"""The configuration as values: frozen dataclasses, each default stated once, here.

:mod:`watcher.config.loading` builds them from the TOML file; everything else
takes them as they are. A :class:`Secret` holds where a secret lives, never
its value.
"""

from __future__ import annotations

import dataclasses
import os
import stat
from typing import TYPE_CHECKING, Literal

from watcher.core.limits import MAX_FILE_SIZE, MAX_ROWS
from watcher.errors import SecretUnavailableError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ApiConfig",
    "Config",
    "DeactivateMethod",
    "EmailConfig",
    "Missing",
    "Notify",
    "Observer",
    "Secret",
    "ServiceConfig",
    "Snapshot",
    "TenantConfig",
]

Observer = Literal["native", "polling"]
Notify = Literal["failures", "always"]
Snapshot = Literal["partial", "full"]
Missing = Literal["report", "deactivate"]
DeactivateMethod = Literal["POST", "DELETE"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Secret:
    """Where a secret lives; its value is read on use and never shown."""

    file: Path | None = None
    env: str | None = None

    def __repr__(self) -> str:
        return f"Secret(file={self.file})" if self.file else f"Secret(env={self.env})"

    def exposure(self) -> str | None:
        """Who else may read or change the secret's file, in words; None when nobody."""
        if self.file is None:
            return None
        try:
            mode = self.file.stat().st_mode
        except OSError:
            return None  # reveal() says why it cannot be read
        if mode & stat.S_IWOTH:
            return f"{self.file} is writable by every account (chmod o-rwx)"
        if mode & stat.S_IROTH:
            return f"{self.file} is readable by every account (chmod o-rwx)"
        return None

    def reveal(self) -> str:
        """The secret's current value, stripped of surrounding whitespace.

        A file any account may write is refused: whoever wrote it would choose
        where users go (a token) or whom the service logs in as.

        Raises:
            SecretUnavailableError: the file or variable is missing or empty,
                or the file is writable by every account.
        """
        if self.file is not None and (exposure := self.exposure()) and "writable" in exposure:
            raise SecretUnavailableError(f"refused: {exposure}")
        if self.file is not None:
            try:
                value = self.file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise SecretUnavailableError(f"cannot read {self.file}: {exc}") from exc
            where = str(self.file)
        else:
            value = os.environ.get(self.env or "", "").strip()
            where = f"${self.env}"
        if not value:
            raise SecretUnavailableError(f"{where} is empty")
        return value


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ApiConfig:
    """Where and how a tenant's users are pushed to the User Import API."""

    url: str
    token: Secret
    # Requests in flight at most; the limit below it is learnt from the API's answers.
    max_concurrency: int = 16
    rate_limit: float | None = None
    timeout: float = 30.0
    max_attempts: int = 6
    max_retry_time: float = 120.0
    # A full snapshot's missing users, deactivated: sent to ``deactivate_url``
    # (None: ``url``) by ``deactivate_method``, each with its key, the
    # ``identify`` fields kept for it, and ``deactivate_fields``.
    deactivate_fields: tuple[tuple[str, str | int | float | bool], ...] = ()
    deactivate_url: str | None = None
    deactivate_method: DeactivateMethod = "POST"
    # Fields besides the key the API needs to name a user (the Push API's login_source).
    identify: tuple[str, ...] = ("login_source",)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EmailConfig:
    """The SMTP server that delivers failure reports."""

    host: str
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    timeout: float = 30.0
    max_attempts: int = 3
    # ``from`` in the file: the service's own address, so reports pass SPF and
    # DMARC; None sends them from each tenant's reply-to address.
    sender: str | None = None
    # Whom a customer writes to about a held import: the host's operator, who
    # decides it (not the tenant's own reply-to address).
    contact: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TenantConfig:
    """One customer: their drop folder, schema and addresses."""

    name: str
    drop_dir: Path
    schema: Path
    failed_import_email: str
    reply_to: str
    api: ApiConfig | None = None
    sftp_log_socket: Path | None = None
    # The FTPS account whose lines in the service's ``ftps_log`` are this
    # tenant's uploads; its chroot is the drop folder's parent.
    ftps_user: str | None = None
    # A valid row that would send what was confirmed for its user within
    # ``resend_unchanged_after`` is not sent (counted "unchanged").
    skip_unchanged: bool = True
    resend_unchanged_after: float = 7 * 24 * 3600.0
    # A batch changing more than this share of at least ``safeguard_min_known``
    # known users is held for an operator; 1.0 turns the safeguard off.
    safeguard_changed: float = 0.2
    safeguard_min_known: int = 100
    # "full": every batch is the whole population, and known users it lacks are
    # missing: reported, or (``missing = "deactivate"``) deactivated through the
    # API. A full snapshot naming fewer than ``safeguard_min_rows`` users, or
    # under half the known ones, is held when it leaves users missing.
    snapshot: Snapshot = "partial"
    missing: Missing = "report"
    safeguard_min_rows: int = 0
    # "failures": a message only when something failed (or was held); "always":
    # a short summary after every batch too. ``notify_to`` gets every message
    # the failed-import address gets.
    notify: Notify = "failures"
    notify_to: tuple[str, ...] = ()
    # Archives, checks, sent messages and per-row detail older than this are
    # deleted; None keeps them.
    retention: float | None = None
    # Plain uploads refused: only files encrypted to the service's key (OpenPGP).
    require_encryption: bool = False
    # The customer's public key: encrypted files must carry its good signature.
    signed_by: Path | None = None
    # The list of rows not imported attached encrypted to that same key.
    encrypt_reports: bool = False

    @property
    def recipients(self) -> str:
        """The To of the tenant's messages: the failed-import address and ``notify_to``."""
        return ", ".join((self.failed_import_email, *self.notify_to))

    @property
    def check_dir(self) -> Path:
        """The check-only lane: files put here are validated, never imported."""
        return self.drop_dir / "check"

    @property
    def target(self) -> str:
        """Where this tenant's users go: the API's URL, or ``embedded``."""
        return self.api.url if self.api is not None else "embedded"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """Settings that apply to every tenant."""

    state_dir: Path
    batch_window: float = 300.0
    max_file_size: int = MAX_FILE_SIZE
    max_rows: int = MAX_ROWS
    settle_time: float = 5.0
    rescan_interval: float = 60.0
    observer: Observer = "native"
    interrupted_after: float = 24 * 3600.0
    leftover_after: float = 24 * 3600.0
    heartbeat_interval: float = 60.0
    # A tenant's check answers go out at most once per this; those between are folded in.
    check_mail_every: float = 60.0
    # Where metrics and the status page are served (host:port); None serves nothing.
    http_listen: str | None = None
    # vsftpd's transfer log (vsftpd_log_file), read for FTPS tenants' uploads.
    ftps_log: Path | None = None
    # The service's own GnuPG home (its key pair): encrypted uploads are decrypted with it.
    gnupg_home: Path | None = None
    # PostgreSQL shared by several instances (a libpq URL without password);
    # None keeps the journal in the state folder's SQLite file.
    database: str | None = None
    database_password: Secret | None = None
    # With a database: how long a tenant stays an instance's once it stops renewing.
    lease_timeout: float = 30.0
    # With a database: this instance's name, unique among those sharing it.
    instance: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration."""

    source: Path
    service: ServiceConfig
    email: EmailConfig | None
    tenants: tuple[TenantConfig, ...]

    def tenant(self, name: str) -> TenantConfig:
        """The tenant called ``name``; KeyError lists the known ones."""
        for tenant in self.tenants:
            if tenant.name == name:
                return tenant
        known = ", ".join(t.name for t in self.tenants) or "none"
        raise KeyError(f"no tenant {name!r} (known: {known})")
