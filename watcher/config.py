"""The service configuration: a TOML file, checked when it is loaded.

Every problem is reported with its key (``tenant[0] "jcu".api.url: ...``) and
all of them at once. Relative paths resolve against the configuration file's
folder. Secrets (API tokens, the SMTP password) are never written in the file
itself: a ``*_file`` key names a file holding the secret, a ``*_env`` key an
environment variable; either is read each time it is used, so rotating a token
needs no restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import re
import stat
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from watcher.errors import ConfigError, SecretUnavailableError

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}
_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_SECRET_KEYS = frozenset({"token", "password", "api_token", "apiToken", "secret"})

Observer = Literal["native", "polling"]


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
    concurrency: int = 8
    rate_limit: float | None = None
    timeout: float = 30.0
    max_attempts: int = 6
    max_retry_time: float = 120.0


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


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """Settings that apply to every tenant."""

    state_dir: Path
    batch_window: float = 300.0
    max_file_size: int = 100 * 1024**2
    max_rows: int = 1_000_000
    settle_time: float = 5.0
    rescan_interval: float = 60.0
    observer: Observer = "native"
    interrupted_after: float = 24 * 3600.0
    leftover_after: float = 24 * 3600.0
    heartbeat_interval: float = 60.0


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

    @property
    def outbox(self) -> Path:
        """Where failure reports wait to be sent (or stay, without SMTP)."""
        return self.service.state_dir / "outbox"


def parse_duration(value: object) -> float | None:
    """Seconds from a number or text such as "5m", "90s", "1h30m"; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    match = _DURATION.match(value)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_size(value: object) -> int | None:
    """Bytes from a number or text such as "100MB", "64 MiB"; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.match(value)
    if match is None:
        return None
    number, unit = match.groups()
    size = int(float(number) * _SIZE_UNITS[(unit or "b").lower()])
    return size if size > 0 else None


def load_config(path: Path) -> Config:
    """Read and check the configuration at ``path``.

    Raises:
        ConfigError: the file is missing, not TOML, or breaks the rules; the
            error lists every problem with its key.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from exc
    parser = _Parser(path.resolve().parent)
    config = parser.config(document, path.resolve())
    if parser.problems or config is None:
        raise ConfigError(str(path), parser.problems)
    return config


def preflight(config: Config) -> list[str]:
    """What would stop the service at run time: folders, schemas, secrets."""
    from watcher.errors import SchemaError  # noqa: PLC0415 - keeps this module light
    from watcher.schema import load_schema  # noqa: PLC0415

    problems = _state_problems(config.service.state_dir)
    for tenant in config.tenants:
        where = f'tenant "{tenant.name}"'
        if not tenant.drop_dir.is_dir():
            problems.append(f"{where}.drop_dir: {tenant.drop_dir} is not a folder")
        try:
            load_schema(tenant.schema)
        except SchemaError as exc:
            problems.extend(f"{where}.schema: {p}" for p in exc.problems)
        if tenant.api is not None:
            try:
                tenant.api.token.reveal()
            except SecretUnavailableError as exc:
                problems.append(f"{where}.api: the token is unavailable: {exc}")
    if config.email is not None and config.email.password is not None:
        try:
            config.email.password.reveal()
        except SecretUnavailableError as exc:
            problems.append(f"email: the password is unavailable: {exc}")
    return problems


def _state_problems(state: Path) -> list[str]:
    """Whether the state folder can be used: writable, or makeable, with a sound journal."""
    if not state.exists():
        parent = next((p for p in state.parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            return [
                (
                    f"service.state_dir: {state} does not exist and cannot be made here: create it "
                    "writable by the service's user (systemd's StateDirectory= does)"
                )
            ]
        return []
    problems = []
    if not os.access(state, os.W_OK | os.X_OK):
        problems.append(f"service.state_dir: {state} is not writable")
    journal = state / "journal.sqlite"
    if journal.exists() and (damage := _journal_damage(journal)) is not None:
        problems.append(f"service.state_dir: the journal {journal} {damage}")
    return problems


def _journal_damage(path: Path) -> str | None:
    """Why the journal cannot be used, read-only and without changing it; None if it can."""
    import sqlite3  # noqa: PLC0415 - only check-config needs it here

    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as exc:
        return f"cannot be read ({exc}): restore it from a backup or move it aside"
    if verdict != "ok":
        return "is damaged (quick_check failed): restore it from a backup or move it aside"
    return None


def folder_warnings(config: Config) -> list[str]:
    """Drop folders without the modes ``watcher tenant add`` gives (setgid, group rwx).

    Without them the service's group may not read an upload or move it into
    ``.bak``; a folder made by hand can still be right for its host.
    """
    warnings = []
    for tenant in config.tenants:
        try:
            mode = tenant.drop_dir.stat().st_mode
        except OSError:
            continue  # preflight names a missing folder
        if not mode & stat.S_ISGID or mode & stat.S_IRWXG != stat.S_IRWXG:
            warnings.append(
                f'tenant "{tenant.name}".drop_dir: {tenant.drop_dir} has mode '
                f"{stat.S_IMODE(mode):04o}, not the 2770 onboarding gives: check that the "
                "service's group can read and move its files"
            )
    return warnings


def exposed_secrets(config: Config) -> list[tuple[str, str]]:
    """Secret files other accounts may read or write: (key, what is wrong)."""
    secrets = [(f'tenant "{t.name}".api.token_file', t.api.token) for t in config.tenants if t.api]
    if config.email is not None and config.email.password is not None:
        secrets.append(("email.password_file", config.email.password))
    return [(key, found) for key, secret in secrets if (found := secret.exposure()) is not None]


_SERVICE_KEYS = frozenset(f.name for f in dataclasses.fields(ServiceConfig))
_EMAIL_KEYS = frozenset(
    {"host", "port", "starttls", "ssl", "username", "password_file", "password_env"}
    | {"ca_file", "timeout", "max_attempts", "from"}
)
_TENANT_KEYS = frozenset(
    {"name", "drop_dir", "schema", "failed_import_email", "reply_to", "api", "sftp_log_socket"}
)
_API_KEYS = frozenset(
    {"url", "token_file", "token_env", "concurrency", "rate_limit", "timeout"}
    | {"max_attempts", "max_retry_time"}
)


class _Parser:
    """Turns the decoded TOML into the model, collecting problems as it goes."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def keys(self, where: str, table: dict[str, object], known: frozenset[str]) -> None:
        for key in table:
            if key in known:
                continue
            if key in _SECRET_KEYS:
                self.problem(
                    f"{where}.{key}",
                    "secrets are never written in the configuration: use a *_file or *_env key",
                )
                continue
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.problem(f"{where}.{key}", f"is not a known key{hint}")

    def table(self, where: str, value: object) -> dict[str, object] | None:
        if not isinstance(value, dict):
            self.problem(where, "must be a table")
            return None
        return value

    def config(self, document: dict[str, object], source: Path) -> Config | None:
        self.keys("", document, frozenset({"service", "email", "tenant", "include"}))
        service_table = self.table("service", document.get("service", {}))
        service = self.service(service_table) if service_table is not None else None
        email = None
        if "email" in document:
            email_table = self.table("email", document["email"])
            email = self.email(email_table) if email_table is not None else None
        raw_tenants = document.get("tenant", [])
        if not isinstance(raw_tenants, list):
            self.problem("tenant", "must be an array of tables: write [[tenant]]")
            raw_tenants = []
        tenants = [self.tenant(i, t) for i, t in enumerate(raw_tenants)]
        tenants += self.included(document.get("include", []))
        good = tuple(t for t in tenants if t is not None)
        self.distinct(good)
        if service is None:
            return None
        return Config(source=source, service=service, email=email, tenants=good)

    def included(self, patterns: object) -> list[TenantConfig | None]:
        """Tenants from the files ``include`` names (one file per tenant is usual)."""
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            self.problem("include", "must be a list of file patterns such as 'tenants.d/*.toml'")
            return []
        found: list[TenantConfig | None] = []
        for pattern in patterns:
            # Path.glob takes relative patterns only; an absolute one is
            # globbed from the root it names.
            root = Path(pattern).anchor
            matches = Path(root).glob(pattern[len(root) :]) if root else self.base.glob(pattern)
            for path in sorted(matches):
                where = (
                    str(path.relative_to(self.base))
                    if path.is_relative_to(self.base)
                    else str(path)
                )
                try:
                    document = tomllib.loads(path.read_text(encoding="utf-8"))
                except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                    self.problem(where, f"cannot be read as TOML: {exc}")
                    continue
                for key in document:
                    if key != "tenant":
                        self.problem(
                            f"{where}: {key}", "an included file holds only [[tenant]] tables"
                        )
                tables = document.get("tenant", [])
                if not isinstance(tables, list):
                    self.problem(f"{where}: tenant", "must be an array of tables: write [[tenant]]")
                    continue
                before = len(self.problems)
                found.extend(self.tenant(i, t) for i, t in enumerate(tables))
                self.problems[before:] = [f"{where}: {p}" for p in self.problems[before:]]
        return found

    def path(self, where: str, value: object) -> Path | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(where, "must be a path")
            return None
        return (self.base / Path(value).expanduser()).resolve()

    def duration(self, where: str, value: object, *, positive: bool = True) -> float | None:
        seconds = parse_duration(value)
        if seconds is None or (positive and seconds <= 0):
            self.problem(where, f"must be a duration such as '5m', '90s' or 300 (got {value!r})")
            return None
        return seconds

    def integer(self, where: str, value: object, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(where, f"must be a whole number from {low} to {high} (got {value!r})")
            return None
        return value

    def flag(self, where: str, value: object) -> bool | None:
        if not isinstance(value, bool):
            self.problem(where, f"must be true or false (got {value!r})")
            return None
        return value

    def text(self, where: str, value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.problem(where, "must be non-empty text")
            return None
        return value.strip()

    def address(self, where: str, value: object) -> str | None:
        text = self.text(where, value)
        if text is None:
            return None
        _, address = parseaddr(text)
        if not _ADDRESS.match(address):
            self.problem(where, f"must be an email address (got {text!r})")
            return None
        return text

    def secret(self, where: str, table: dict[str, object], what: str) -> Secret | None:
        file_key, env_key = f"{what}_file", f"{what}_env"
        if file_key in table and env_key in table:
            self.problem(where, f"give {file_key} or {env_key}, not both")
            return None
        if file_key in table:
            path = self.path(f"{where}.{file_key}", table[file_key])
            return Secret(file=path) if path else None
        if env_key in table:
            name = self.text(f"{where}.{env_key}", table[env_key])
            return Secret(env=name) if name else None
        return None

    def limits(self, table: dict[str, object]) -> dict[str, object]:
        """``max_file_size`` and ``max_rows``, where given (None for a bad one)."""
        values: dict[str, object] = {}
        if "max_file_size" in table:
            size = parse_size(table["max_file_size"])
            if size is None:
                self.problem(
                    "service.max_file_size",
                    f"must be a size such as '100MB' (got {table['max_file_size']!r})",
                )
            values["max_file_size"] = size
        if "max_rows" in table:
            rows = table["max_rows"]
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
                self.problem("service.max_rows", f"must be a whole number of rows (got {rows!r})")
                rows = None
            values["max_rows"] = rows
        return values

    def service(self, table: dict[str, object]) -> ServiceConfig | None:
        self.keys("service", table, _SERVICE_KEYS)
        if "state_dir" not in table:
            self.problem("service.state_dir", "is required: the folder for the journal and outbox")
            return None
        state_dir = self.path("service.state_dir", table["state_dir"])
        values: dict[str, object] = {}
        for key in (
            "batch_window",
            "settle_time",
            "rescan_interval",
            "interrupted_after",
            "leftover_after",
            "heartbeat_interval",
        ):
            if key in table:
                values[key] = self.duration(f"service.{key}", table[key])
        values.update(self.limits(table))
        if "observer" in table:
            observer = table["observer"]
            if observer not in ("native", "polling"):
                self.problem(
                    "service.observer", f"must be 'native' or 'polling' (got {observer!r})"
                )
            values["observer"] = observer
        if state_dir is None or any(v is None for v in values.values()):
            return None
        return ServiceConfig(state_dir=state_dir, **values)  # type: ignore[arg-type]

    def email(self, table: dict[str, object]) -> EmailConfig | None:
        self.keys("email", table, _EMAIL_KEYS)
        host = self.text("email.host", table.get("host"))
        port = self.integer("email.port", table.get("port", 25), 1, 65535)
        starttls = self.flag("email.starttls", table.get("starttls", False))
        ssl = self.flag("email.ssl", table.get("ssl", False))
        if starttls and ssl:
            self.problem("email", "choose starttls or ssl, not both")
        username = table.get("username")
        if username is not None and self.text("email.username", username) is None:
            username = None
        password = self.secret("email", table, "password")
        if (username is None) != (password is None):
            self.problem("email", "username and password_file/password_env go together")
        ca_file = self.path("email.ca_file", table["ca_file"]) if "ca_file" in table else None
        timeout = self.duration("email.timeout", table.get("timeout", 30))
        attempts = self.integer("email.max_attempts", table.get("max_attempts", 3), 1, 20)
        sender = self.address("email.from", table["from"]) if "from" in table else ""
        if None in (host, port, starttls, ssl, timeout, attempts, sender):
            return None
        return EmailConfig(
            host=str(host),
            port=int(port or 25),
            starttls=bool(starttls),
            ssl=bool(ssl),
            username=str(username) if username is not None else None,
            password=password,
            ca_file=ca_file,
            timeout=float(timeout or 30),
            max_attempts=int(attempts or 3),
            sender=sender or None,
        )

    def tenant(self, index: int, value: object) -> TenantConfig | None:
        where = f"tenant[{index}]"
        table = self.table(where, value)
        if table is None:
            return None
        name = table.get("name")
        if isinstance(name, str) and _TENANT_NAME.match(name):
            where = f'tenant[{index}] "{name}"'
        else:
            self.problem(
                f"{where}.name",
                "must be lower-case letters, digits, '-' or '_', up to 64 characters",
            )
            name = None
        before = len(self.problems)
        self.keys(where, table, _TENANT_KEYS)
        for key in ("drop_dir", "schema", "failed_import_email", "reply_to"):
            if key not in table:
                self.problem(f"{where}.{key}", "is required")
        drop_dir = self.path(f"{where}.drop_dir", table.get("drop_dir"))
        schema = self.path(f"{where}.schema", table.get("schema"))
        failed = self.address(f"{where}.failed_import_email", table.get("failed_import_email"))
        reply_to = self.address(f"{where}.reply_to", table.get("reply_to"))
        socket = None
        if "sftp_log_socket" in table:
            socket = self.path(f"{where}.sftp_log_socket", table["sftp_log_socket"])
        api = None
        if "api" in table:
            api_table = self.table(f"{where}.api", table["api"])
            api = self.api(f"{where}.api", api_table) if api_table is not None else None
        if len(self.problems) > before or name is None:
            return None
        return TenantConfig(
            name=name,
            drop_dir=drop_dir or Path(),
            schema=schema or Path(),
            failed_import_email=failed or "",
            reply_to=reply_to or "",
            api=api,
            sftp_log_socket=socket,
        )

    def api(self, where: str, table: dict[str, object]) -> ApiConfig | None:
        self.keys(where, table, _API_KEYS)
        url = self.text(f"{where}.url", table.get("url"))
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                self.problem(f"{where}.url", f"must be an http or https URL (got {url!r})")
                url = None
        token = self.secret(where, table, "token")
        if token is None and not any(k in table for k in ("token_file", "token_env")):
            self.problem(where, "needs token_file or token_env")
        concurrency = self.integer(f"{where}.concurrency", table.get("concurrency", 8), 1, 256)
        rate = table.get("rate_limit")
        if rate is not None and (
            isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0
        ):
            self.problem(f"{where}.rate_limit", f"must be requests per second (got {rate!r})")
            rate = None
        timeout = self.duration(f"{where}.timeout", table.get("timeout", 30))
        attempts = self.integer(f"{where}.max_attempts", table.get("max_attempts", 6), 1, 100)
        retry_time = self.duration(f"{where}.max_retry_time", table.get("max_retry_time", 120))
        if None in (url, token, concurrency, timeout, attempts, retry_time):
            return None
        return ApiConfig(
            url=str(url),
            token=token or Secret(),
            concurrency=int(concurrency or 8),
            rate_limit=float(rate) if isinstance(rate, int | float) else None,
            timeout=float(timeout or 30),
            max_attempts=int(attempts or 6),
            max_retry_time=float(retry_time or 120),
        )

    def distinct(self, tenants: tuple[TenantConfig, ...]) -> None:
        names: set[str] = set()
        folders: dict[Path, str] = {}
        for tenant in tenants:
            if tenant.name in names:
                self.problem(f'tenant "{tenant.name}"', "the name is used twice")
            names.add(tenant.name)
            mine = tenant.drop_dir.resolve()
            for folder, other in folders.items():
                if mine == folder:
                    self.problem(
                        f'tenant "{tenant.name}".drop_dir',
                        f'is also the drop folder of tenant "{other}"',
                    )
                elif mine.is_relative_to(folder) or folder.is_relative_to(mine):
                    # A file written into the inner folder would be imported as
                    # the other tenant's.
                    self.problem(
                        f'tenant "{tenant.name}".drop_dir',
                        f'overlaps the drop folder of tenant "{other}" ({folder}): '
                        "drop folders must not contain one another",
                    )
            folders.setdefault(mine, tenant.name)
