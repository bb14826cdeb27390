"""Loading the TOML configuration file into :class:`watcher.config.model.Config`.

One function per section; a :class:`watcher.config.values.Values` reader
collects every problem, so :class:`watcher.errors.ConfigError` lists them all
at once. Tenants may also come from the files ``include`` names (one file per
tenant is what ``watcher tenant add`` writes).
"""

from __future__ import annotations

import dataclasses
import re
import string
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from watcher.config.model import ApiConfig, Config, EmailConfig, ServiceConfig, TenantConfig
from watcher.config.values import Values, made, parse_size
from watcher.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["load_config"]

_TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SERVICE_KEYS = frozenset(
    f.name for f in dataclasses.fields(ServiceConfig) if f.name != "database_password"
) | {"database_password_file", "database_password_env"}
_DATABASE_URL = re.compile(r"^postgres(?:ql)?://")
_SHORTEST_LEASE = 3.0
_INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SERVICE_DURATIONS = (
    "batch_window",
    "settle_time",
    "rescan_interval",
    "interrupted_after",
    "leftover_after",
    "heartbeat_interval",
    "check_mail_every",
    "lease_timeout",
)
_EMAIL_KEYS = frozenset(
    {"host", "port", "starttls", "ssl", "username", "password_file", "password_env"}
    | {"ca_file", "timeout", "max_attempts", "from", "contact"}
)
_TENANT_KEYS = frozenset(
    {"name", "drop_dir", "schema", "failed_import_email", "reply_to", "api", "sftp_log_socket"}
    | {"ftps_user"}
    | {"skip_unchanged", "resend_unchanged_after", "safeguard_changed", "safeguard_min_known"}
    | {"notify", "notify_to", "retention", "require_encryption", "signed_by"}
    | {"encrypt_reports", "snapshot", "missing", "safeguard_min_rows"}
)
_TENANT_REQUIRED = ("drop_dir", "schema", "failed_import_email", "reply_to")
_API_KEYS = frozenset(
    {"url", "token_file", "token_env", "max_concurrency", "concurrency", "rate_limit", "timeout"}
    | {"max_attempts", "max_retry_time"}
    | {"deactivate_fields", "deactivate_url", "deactivate_method", "identify"}
)
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


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
    values = Values(path.resolve().parent)
    config = _config(values, document, path.resolve())
    if values.problems or config is None:
        raise ConfigError(str(path), values.problems)
    return config


def _config(v: Values, document: dict[str, object], source: Path) -> Config | None:
    v.keys("", document, frozenset({"service", "email", "tenant", "include"}))
    service_table = v.table("service", document.get("service", {}))
    service = _service(v, service_table) if service_table is not None else None
    email = None
    if "email" in document:
        email_table = v.table("email", document["email"])
        email = _email(v, email_table) if email_table is not None else None
    raw_tenants = document.get("tenant", [])
    if not isinstance(raw_tenants, list):
        v.problem("tenant", "must be an array of tables: write [[tenant]]")
        raw_tenants = []
    tenants = [_tenant(v, i, t) for i, t in enumerate(raw_tenants)]
    tenants += _included(v, document.get("include", []))
    good = tuple(t for t in tenants if t is not None)
    _distinct(v, good)
    if service is not None and service.database is not None:
        for tenant in good:
            if tenant.api is None:
                v.problem(
                    f"tenant {tenant.name}",
                    "needs [tenant.api] with service.database: the embedded store is one "
                    "host's file, not shared",
                )
    if service is None:
        return None
    return Config(source=source, service=service, email=email, tenants=good)


def _included(v: Values, patterns: object) -> list[TenantConfig | None]:
    """Tenants from the files ``include`` names."""
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        v.problem("include", "must be a list of file patterns such as 'tenants.d/*.toml'")
        return []
    found: list[TenantConfig | None] = []
    for pattern in patterns:
        # Path.glob takes relative patterns only; an absolute one is globbed
        # from the root it names.
        root = Path(pattern).anchor
        matches = Path(root).glob(pattern[len(root) :]) if root else v.base.glob(pattern)
        for path in sorted(matches):
            where = str(path.relative_to(v.base)) if path.is_relative_to(v.base) else str(path)
            try:
                document = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                v.problem(where, f"cannot be read as TOML: {exc}")
                continue
            for key in document:
                if key != "tenant":
                    v.problem(f"{where}: {key}", "an included file holds only [[tenant]] tables")
            tables = document.get("tenant", [])
            if not isinstance(tables, list):
                v.problem(f"{where}: tenant", "must be an array of tables: write [[tenant]]")
                continue
            before = len(v.problems)
            found.extend(_tenant(v, i, t) for i, t in enumerate(tables))
            v.problems[before:] = [f"{where}: {p}" for p in v.problems[before:]]
    return found


def _service(v: Values, table: dict[str, object]) -> ServiceConfig | None:
    v.keys("service", table, _SERVICE_KEYS)
    if "state_dir" not in table:
        v.problem("service.state_dir", "is required: the folder for the journal and outbox")
        return None
    values: dict[str, object] = {"state_dir": v.path("service.state_dir", table["state_dir"])}
    for key in _SERVICE_DURATIONS:
        if key in table:
            values[key] = v.duration(f"service.{key}", table[key])
    if "max_file_size" in table:
        size = parse_size(table["max_file_size"])
        if size is None:
            v.problem(
                "service.max_file_size",
                f"must be a size such as '100MB' (got {table['max_file_size']!r})",
            )
        values["max_file_size"] = size
    if "max_rows" in table:
        rows = table["max_rows"]
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            v.problem("service.max_rows", f"must be a whole number of rows (got {rows!r})")
            rows = None
        values["max_rows"] = rows
    _optional(
        values,
        "service",
        table,
        {"http_listen": v.listen, "ftps_log": v.path, "gnupg_home": v.path},
    )
    _database(v, table, values)
    if "observer" in table:
        observer = table["observer"]
        if observer not in ("native", "polling"):
            v.problem("service.observer", f"must be 'native' or 'polling' (got {observer!r})")
            observer = None
        values["observer"] = observer
    return made(ServiceConfig, values)


def _database(v: Values, table: dict[str, object], values: dict[str, object]) -> None:
    """The shared database's settings: a URL without its password, a lease, a name."""
    if "database" not in table:
        for key in ("database_password_file", "database_password_env", "instance"):
            if key in table:
                v.problem(f"service.{key}", "needs service.database")
        return
    url = v.text("service.database", table["database"])
    if url is not None and not _DATABASE_URL.match(url):
        v.problem(
            "service.database",
            f"must be a URL such as 'postgresql://watcher@db/watcher' (got {url!r})",
        )
        url = None
    elif url is not None and re.match(r"^[^:/]+://[^/@]*:[^/@]*@", url):
        v.problem(
            "service.database",
            "holds a password: put it in database_password_file or database_password_env",
        )
        url = None
    values["database"] = url
    if "database_password_file" in table or "database_password_env" in table:
        # None when the key's value is bad (the problem is noted); absent: no password,
        # as with peer or certificate logins.
        values["database_password"] = v.secret("service", table, "database_password")
    if "instance" in table:
        name = v.text("service.instance", table["instance"])
        if name is not None and not _INSTANCE.match(name):
            v.problem(
                "service.instance",
                f"must be a name of letters, digits, '.', '_' or '-' (got {name!r})",
            )
            name = None
        values["instance"] = name
    lease = values.get("lease_timeout")
    if isinstance(lease, float) and lease < _SHORTEST_LEASE:
        v.problem(
            "service.lease_timeout", f"must be at least {_SHORTEST_LEASE:g}s (got {lease:g}s)"
        )


def _email(v: Values, table: dict[str, object]) -> EmailConfig | None:
    v.keys("email", table, _EMAIL_KEYS)
    values: dict[str, object] = {"host": v.text("email.host", table.get("host"))}
    _optional(
        values,
        "email",
        table,
        {
            "port": lambda where, x: v.integer(where, x, 1, 65535),
            "starttls": v.flag,
            "ssl": v.flag,
            "username": v.text,
            "ca_file": v.path,
            "timeout": v.duration,
            "max_attempts": lambda where, x: v.integer(where, x, 1, 20),
            "from": v.address,
            "contact": v.address,
        },
    )
    if values.get("starttls") and values.get("ssl"):
        v.problem("email", "choose starttls or ssl, not both")
    password = v.secret("email", table, "password")
    if ("username" in table) != (password is not None):
        v.problem("email", "username and password_file/password_env go together")
    if password is not None:
        values["password"] = password
    if "from" in values:
        values["sender"] = values.pop("from")
    return made(EmailConfig, values)


def _tenant(v: Values, index: int, value: object) -> TenantConfig | None:
    where = f"tenant[{index}]"
    table = v.table(where, value)
    if table is None:
        return None
    name = table.get("name")
    if isinstance(name, str) and _TENANT_NAME.match(name):
        where = f'tenant[{index}] "{name}"'
    else:
        v.problem(
            f"{where}.name", "must be lower-case letters, digits, '-' or '_', up to 64 characters"
        )
        name = None
    before = len(v.problems)
    v.keys(where, table, _TENANT_KEYS)
    for key in _TENANT_REQUIRED:
        if key not in table:
            v.problem(f"{where}.{key}", "is required")
    values: dict[str, object] = {
        "name": name,
        "drop_dir": v.path(f"{where}.drop_dir", table.get("drop_dir")),
        "schema": v.path(f"{where}.schema", table.get("schema")),
        "failed_import_email": v.address(
            f"{where}.failed_import_email", table.get("failed_import_email")
        ),
        "reply_to": v.address(f"{where}.reply_to", table.get("reply_to")),
    }
    _optional(
        values,
        where,
        table,
        {
            "sftp_log_socket": v.path,
            "ftps_user": v.account,
            "skip_unchanged": v.flag,
            "resend_unchanged_after": v.duration,
            "safeguard_changed": v.share,
            "safeguard_min_known": lambda at, x: v.integer(at, x, 0, 1_000_000_000),
            "notify": lambda at, x: v.choice(at, x, ("failures", "always")),
            "notify_to": v.addresses,
            "retention": v.duration,
            "require_encryption": v.flag,
            "signed_by": v.path,
            "encrypt_reports": v.flag,
            "snapshot": lambda at, x: v.choice(at, x, ("partial", "full")),
            "missing": lambda at, x: v.choice(at, x, ("report", "deactivate")),
            "safeguard_min_rows": lambda at, x: v.integer(at, x, 0, 1_000_000_000),
        },
    )
    if values.get("encrypt_reports") and values.get("signed_by") is None:
        v.problem(f"{where}.encrypt_reports", "needs signed_by: the customer's key to encrypt to")
    if "missing" in table and values.get("snapshot") != "full":
        v.problem(
            f"{where}.missing", 'needs snapshot = "full": only a full snapshot leaves users missing'
        )
    if "api" in table:
        api_table = v.table(f"{where}.api", table["api"])
        values["api"] = _api(v, f"{where}.api", api_table) if api_table is not None else None
    elif values.get("missing") == "deactivate":
        v.problem(
            f"{where}.missing",
            '"deactivate" needs [tenant.api]: the embedded store has no deactivation',
        )
    if len(v.problems) > before:
        return None
    return made(TenantConfig, values)


def _api(v: Values, where: str, table: dict[str, object]) -> ApiConfig | None:
    v.keys(where, table, _API_KEYS)
    url = v.text(f"{where}.url", table.get("url"))
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            v.problem(f"{where}.url", f"must be an http or https URL (got {url!r})")
            url = None
    values: dict[str, object] = {"url": url, "token": v.secret(where, table, "token")}
    if "concurrency" in table:  # the name of max_concurrency before the limit adapted
        if "max_concurrency" in table:
            v.problem(f"{where}.concurrency", "give max_concurrency or concurrency, not both")
        values["max_concurrency"] = v.integer(f"{where}.concurrency", table["concurrency"], 1, 256)
    if values["token"] is None and not any(k in table for k in ("token_file", "token_env")):
        v.problem(where, "needs token_file or token_env")
    _optional(
        values,
        where,
        table,
        {
            "max_concurrency": lambda at, x: v.integer(at, x, 1, 256),
            "rate_limit": v.rate,
            "timeout": v.duration,
            "max_attempts": lambda at, x: v.integer(at, x, 1, 100),
            "max_retry_time": v.duration,
            "deactivate_method": lambda at, x: v.choice(at, x, ("POST", "DELETE")),
        },
    )
    _deactivation(v, where, table, values)
    return made(ApiConfig, values)


def _deactivation(
    v: Values, where: str, table: Mapping[str, object], values: dict[str, object]
) -> None:
    """How missing users are deactivated: the fields sent, the URL and the fields naming a user."""
    if "deactivate_fields" in table:
        fields = v.table(f"{where}.deactivate_fields", table["deactivate_fields"])
        found: list[tuple[str, str | int | float | bool]] = []
        for name, value in (fields or {}).items():
            at = f"{where}.deactivate_fields.{name}"
            if not _FIELD_NAME.match(name) or name == "apiToken":
                v.problem(at, "must be an API field's name (letters, digits, '_', '.', '-')")
            elif not isinstance(value, str | int | float | bool):
                v.problem(at, f"must be text, a number or true/false (got {value!r})")
            else:
                found.append((name, value))
        values["deactivate_fields"] = tuple(found)
    if "deactivate_url" in table:
        url = v.text(f"{where}.deactivate_url", table["deactivate_url"])
        parts = urlsplit(url or "")
        if url is not None and (parts.scheme not in ("http", "https") or not parts.netloc):
            v.problem(f"{where}.deactivate_url", f"must be an http or https URL (got {url!r})")
            url = None
        elif url is not None and not _placeholders_named(url):
            v.problem(
                f"{where}.deactivate_url",
                "may hold {field} placeholders naming a key or identify field, nothing else "
                f"(got {url!r})",
            )
            url = None
        values["deactivate_url"] = url
    if "identify" in table:
        names = table["identify"]
        if not isinstance(names, list) or not all(
            isinstance(n, str) and _FIELD_NAME.match(n) for n in names
        ):
            v.problem(f"{where}.identify", "must be a list of API field names")
        else:
            values["identify"] = tuple(names)


def _placeholders_named(url: str) -> bool:
    """Whether every ``{...}`` of ``url`` names a field, without conversion or format."""
    try:
        parsed = list(string.Formatter().parse(url))
    except ValueError:
        return False
    return all(
        name is None or (_FIELD_NAME.match(name) and not spec and not conversion)
        for _, name, spec, conversion in parsed
    )


def _optional(
    values: dict[str, object],
    where: str,
    table: Mapping[str, object],
    readers: Mapping[str, Callable[[str, object], object]],
) -> None:
    """Read the keys of ``readers`` that ``table`` has; the rest keep the model's defaults."""
    for key, read in readers.items():
        if key in table:
            values[key] = read(f"{where}.{key}", table[key])


def _distinct(v: Values, tenants: tuple[TenantConfig, ...]) -> None:
    """Each tenant's name and drop folder its own, and no drop folder inside another."""
    names: set[str] = set()
    folders: dict[Path, str] = {}
    for tenant in tenants:
        if tenant.name in names:
            v.problem(f'tenant "{tenant.name}"', "the name is used twice")
        names.add(tenant.name)
        mine = tenant.drop_dir.resolve()
        for folder, other in folders.items():
            if mine == folder:
                v.problem(
                    f'tenant "{tenant.name}".drop_dir',
                    f'is also the drop folder of tenant "{other}"',
                )
            elif mine.is_relative_to(folder) or folder.is_relative_to(mine):
                # A file written into the inner folder would be imported as
                # the other tenant's.
                v.problem(
                    f'tenant "{tenant.name}".drop_dir',
                    f'overlaps the drop folder of tenant "{other}" ({folder}): '
                    "drop folders must not contain one another",
                )
        folders.setdefault(mine, tenant.name)
