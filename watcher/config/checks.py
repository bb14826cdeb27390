"""What ``watcher check-config`` and the service's start look at beyond the file itself.

The state folder and its journal, each tenant's drop folder, schema and
secrets: whatever would stop the service at run time, found before it runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import string
from typing import TYPE_CHECKING, Any

from watcher.errors import SchemaError, SecretUnavailableError

if TYPE_CHECKING:
    from pathlib import Path

    from watcher.config.model import Config, Secret, TenantConfig
    from watcher.core.schema import Schema

__all__ = ["exposed_secrets", "folder_warnings", "preflight"]


def preflight(config: Config) -> list[str]:
    """What would stop the service at run time: folders, schemas, secrets."""
    problems = _state_problems(config.service.state_dir)
    log = config.service.ftps_log
    if log is not None and not os.access(log, os.R_OK):
        problems.append(
            f"service.ftps_log: {log} cannot be read by this account: FTPS uploads could not "
            "be told from interrupted ones (make it root:<service group> 0640)"
        )
    problems += _openpgp_problems(config)
    for tenant in config.tenants:
        problems += _tenant_problems(tenant)
    if config.email is not None and config.email.password is not None:
        try:
            config.email.password.reveal()
        except SecretUnavailableError as exc:
            problems.append(f"email: the password is unavailable: {exc}")
    if config.service.database is not None:
        problems += _database_problems(config.service.database, config.service.database_password)
    return problems


def _openpgp_problems(config: Config) -> list[str]:
    """Encrypted uploads: the service's keyring, GnuPG itself, each customer's key file."""
    problems = []
    home = config.service.gnupg_home
    if home is not None:
        if not home.is_dir() or not os.access(home, os.R_OK | os.X_OK):
            problems.append(
                f"service.gnupg_home: {home} is not a folder this account can read: encrypted "
                "uploads could not be decrypted"
            )
        if shutil.which("gpg") is None:
            problems.append(
                "service.gnupg_home: gpg is not installed: encrypted uploads could not be "
                "decrypted (install Debian's gnupg)"
            )
    for tenant in config.tenants:
        where = f'tenant "{tenant.name}"'
        if (tenant.require_encryption or tenant.signed_by is not None) and home is None:
            problems.append(
                f"{where}: takes only encrypted files, and service.gnupg_home is not set: "
                "every upload would be refused"
            )
        if tenant.signed_by is not None and not os.access(tenant.signed_by, os.R_OK):
            problems.append(
                f"{where}.signed_by: {tenant.signed_by} cannot be read by this account: every "
                "upload would be refused"
            )
    return problems


def _database_problems(url: str, password: Secret | None) -> list[str]:
    """Whether the shared database takes a login, read-only: nothing is changed."""
    import psycopg  # noqa: PLC0415 - only a shared database needs it

    try:
        secret: dict[str, Any] = {} if password is None else {"password": password.reveal()}
        with psycopg.connect(url, connect_timeout=10, **secret) as db:
            db.execute("SELECT 1")
    except SecretUnavailableError as exc:
        return [f"service.database: the password is unavailable: {exc}"]
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [f"service.database: {url} cannot be used ({reason})"]
    return []


def _tenant_problems(tenant: TenantConfig) -> list[str]:
    """A tenant's drop folder, schema, token and deactivation URL, as the service will use them."""
    from watcher.core.schema_parser import load_schema  # noqa: PLC0415 - brings polars

    where = f'tenant "{tenant.name}"'
    problems = []
    if not tenant.drop_dir.is_dir():
        problems.append(f"{where}.drop_dir: {tenant.drop_dir} is not a folder")
    try:
        schema = load_schema(tenant.schema)
    except SchemaError as exc:
        problems.extend(f"{where}.schema: {p}" for p in exc.problems)
    else:
        problems += _deactivation_problems(tenant, schema)
    if tenant.api is not None:
        try:
            tenant.api.token.reveal()
        except SecretUnavailableError as exc:
            problems.append(f"{where}.api: the token is unavailable: {exc}")
    return problems


def _deactivation_problems(tenant: TenantConfig, schema: Schema) -> list[str]:
    """A deactivation URL whose placeholders name no field a missing user is known by."""
    api = tenant.api
    if api is None or api.deactivate_url is None or tenant.missing != "deactivate":
        return []
    from watcher.core.changes import user_key  # noqa: PLC0415 - with the schema parser

    known = {*user_key(schema), *api.identify}
    named = [n for _, n, _, _ in string.Formatter().parse(api.deactivate_url) if n is not None]
    return [
        f'tenant "{tenant.name}".api.deactivate_url: {{{name}}} is neither a field of the '
        f"schema's primary key ({', '.join(user_key(schema))}) nor in identify: "
        "every deactivation would be sent without it"
        for name in named
        if name not in known
    ]


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
