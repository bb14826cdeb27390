"""Adding and removing a tenant on the host: account, folders, key or password, config.

``watcher tenant add`` does, as root, everything a new customer needs:

- a system account with no shell: for SFTP in the group that the sshd
  snippet in ``deploy/`` matches, with no password (unlocked, so key login
  works); for FTPS with a password and on vsftpd's allowed list
  (:mod:`watcher.shell.accounts.ftpsaccounts`);
- the chroot ``<sftp_root>/<name>`` owned by root and closed to others, as
  sshd demands; inside it ``upload/``, the drop folder, owned by the customer
  and shared with the service's group (setgid, mode 2770), so the service reads
  and moves the customer's files without running as root, with ``check/`` in
  it made the same way (the check-only lane); and ``dev/``, where the service
  binds the socket the SFTP server logs to;
- for SFTP, the customer's public key in the root-owned authorized-keys folder;
- ``<config dir>/tenants.d/<name>.toml``, read by the service through
  ``include``.

``watcher tenant remove`` undoes it; the folders are kept unless purged.
:func:`give_ftps` gives an existing tenant FTPS too (or a new password).
"""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Literal

from watcher.errors import OnboardingError
from watcher.shell.accounts import ftpsaccounts

__all__ = ["Layout", "NewTenant", "Protocol", "add", "give_ftps", "remove"]

Protocol = Literal["sftp", "ftps"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_KEY = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-\S+|sk-\S+) [A-Za-z0-9+/=]+( .*)?$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Where tenants live on this host."""

    config: Path
    sftp_root: Path
    keys_dir: Path
    group: str = "sftp-import"
    service_user: str = "user-import"

    @property
    def tenants_dir(self) -> Path:
        """The folder of per-tenant configuration files."""
        return self.config.parent / "tenants.d"

    @property
    def ftps_users(self) -> Path:
        """The accounts vsftpd lets in (``userlist_file``, and the PAM file's list)."""
        return self.config.parent / "ftps-users"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NewTenant:
    """What a new tenant needs."""

    name: str
    failed_import_email: str
    reply_to: str
    schema: Path
    api_url: str | None = None
    token_file: Path | None = None
    protocols: tuple[Protocol, ...] = ("sftp",)
    public_key: str | None = None  # for SFTP
    password: str | None = None  # for FTPS; None makes one


def _check_name(name: str) -> None:
    """Refuse names that are no valid account or tenant name."""
    if not _NAME.match(name):
        raise OnboardingError(
            f"{name!r}: a tenant name is a lower-case letter, then up to 31 letters, "
            "digits, '-' or '_' (it is also the SFTP account name)"
        )


def _check_key(text: str) -> str:
    """The one public key in ``text``, or an error saying what is wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 1 or not _KEY.match(lines[0]):
        raise OnboardingError(
            "the key file must hold exactly one OpenSSH public key (ssh-ed25519 AAAA...)"
        )
    return lines[0]


def _run(*command: str) -> None:
    # Fixed commands (useradd and friends) with checked names: no shell, no user input.
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise OnboardingError(f"{' '.join(command)} failed: {result.stderr.strip()}")


def _tenant_toml(layout: Layout, tenant: NewTenant) -> str:
    chroot = layout.sftp_root / tenant.name
    lines = [
        f"# Written by `watcher tenant add {tenant.name}`.",
        "[[tenant]]",
        f'name = "{tenant.name}"',
        f'drop_dir = "{chroot / "upload"}"',
    ]
    if "sftp" in tenant.protocols:
        lines.append(f'sftp_log_socket = "{chroot / "dev" / "log"}"')
    if "ftps" in tenant.protocols:
        lines.append(f'ftps_user = "{tenant.name}"')
    lines += [
        f'schema = "{tenant.schema}"',
        f'failed_import_email = "{tenant.failed_import_email}"',
        f'reply_to = "{tenant.reply_to}"',
    ]
    if tenant.api_url is not None:
        lines += [
            "",
            "[tenant.api]",
            f'url = "{tenant.api_url}"',
            f'token_file = "{tenant.token_file}"',
        ]
    return "\n".join(lines) + "\n"


def add(layout: Layout, tenant: NewTenant) -> tuple[list[str], str | None]:
    """Create everything ``tenant`` needs; the steps taken, and a password made for FTPS.

    The password is returned only when one was made (none given): it is shown
    once, and kept nowhere but as the system's hash.
    """
    key, service = _check_new(layout, tenant)
    done = _account(layout, tenant.name, sftp=key is not None)
    account = pwd.getpwnam(tenant.name)
    done += _folders(layout, tenant.name, account, service)
    if key is not None:
        layout.keys_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        keys = layout.keys_dir / tenant.name
        keys.write_text(key + "\n")
        os.chown(keys, 0, 0)
        keys.chmod(0o644)
        done.append(f"installed the public key in {keys}")
    made = None
    if "ftps" in tenant.protocols:
        password = tenant.password or ftpsaccounts.new_password()
        made = None if tenant.password else password
        done += _ftps(layout, tenant.name, password)
    config_file = layout.tenants_dir / f"{tenant.name}.toml"
    layout.tenants_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    os.chown(layout.tenants_dir, 0, service.pw_gid)
    config_file.write_text(_tenant_toml(layout, tenant))
    os.chown(config_file, 0, service.pw_gid)
    config_file.chmod(0o640)
    done.append(f"added the tenant to the service in {config_file}")
    return done, made


def _check_new(layout: Layout, tenant: NewTenant) -> tuple[str | None, pwd.struct_passwd]:
    """The tenant's checked key (None without SFTP) and the service's account; or why not."""
    _check_name(tenant.name)
    if not tenant.protocols:
        raise OnboardingError("give at least one protocol: sftp or ftps")
    key = None
    if "sftp" in tenant.protocols:
        if tenant.public_key is None:
            raise OnboardingError("an SFTP tenant needs the customer's public key (--key)")
        key = _check_key(tenant.public_key)
    if (tenant.api_url is None) != (tenant.token_file is None):
        raise OnboardingError("--api-url and --token-file go together")
    try:
        service = pwd.getpwnam(layout.service_user)
    except KeyError as exc:
        raise OnboardingError(
            f"the service account {layout.service_user!r} does not exist; create it first: "
            f"useradd --system --no-create-home --shell /usr/sbin/nologin {layout.service_user}"
        ) from exc
    with contextlib.suppress(KeyError):
        pwd.getpwnam(tenant.name)
        raise OnboardingError(f"an account called {tenant.name!r} exists already")
    config_file = layout.tenants_dir / f"{tenant.name}.toml"
    if config_file.exists():
        raise OnboardingError(f"{config_file} exists already")
    return key, service


def _account(layout: Layout, name: str, *, sftp: bool) -> list[str]:
    """The customer's account: no shell, no password (yet); in the SFTP group for SFTP."""
    done: list[str] = []
    groups: list[str] = []
    if sftp:
        groups = ["--groups", layout.group]
        try:
            grp.getgrnam(layout.group)
        except KeyError:
            _run("groupadd", "--system", layout.group)
            done.append(f"created the group {layout.group}")
    _run(
        "useradd", "--system", "--user-group", *groups,
        "--home-dir", "/upload", "--no-create-home", "--shell", "/usr/sbin/nologin", name,
    )  # fmt: skip
    _run("usermod", "--password", "*", name)
    if sftp:
        done.append(f"created the SFTP account {name} (key login only, no shell)")
    else:
        done.append(f"created the account {name} (no shell)")
    return done


def _folders(
    layout: Layout, name: str, account: pwd.struct_passwd, service: pwd.struct_passwd
) -> list[str]:
    """The chroot, root's; upload/ and check/ in it, shared with the service's group; dev/."""
    chroot = layout.sftp_root / name
    for folder in (layout.sftp_root, chroot):
        folder.mkdir(mode=0o755, exist_ok=True)
        os.chown(folder, 0, 0)
        folder.chmod(0o755)
    upload, dev = chroot / "upload", chroot / "dev"
    for folder in (upload, upload / "check"):
        folder.mkdir(exist_ok=True)
        os.chown(folder, account.pw_uid, service.pw_gid)
        folder.chmod(0o2770)
    dev.mkdir(exist_ok=True)
    os.chown(dev, service.pw_uid, service.pw_gid)
    dev.chmod(0o755)
    made = f"made the chroot {chroot} with upload/ (the drop folder), upload/check/ (files "
    return [made + "only checked, never imported) and dev/"]


def _ftps(layout: Layout, name: str, password: str) -> list[str]:
    chroot = layout.sftp_root / name
    ftpsaccounts.set_password(name, password, chroot)
    done = [f"set the FTPS password of {name} (kept only as the system's hash)"]
    if ftpsaccounts.allow(layout.ftps_users, name):
        done.append(f"allowed {name} to log in over FTPS ({layout.ftps_users})")
    return done


def give_ftps(layout: Layout, name: str, password: str | None) -> tuple[list[str], str | None]:
    """Give an existing tenant FTPS, or its FTPS account a new password.

    Returns the steps taken, and the password when one was made.
    """
    _check_name(name)
    config_file = layout.tenants_dir / f"{name}.toml"
    try:
        pwd.getpwnam(name)
    except KeyError as exc:
        raise OnboardingError(f"there is no account {name!r}: add the tenant first") from exc
    if not config_file.is_file():
        raise OnboardingError(f"{config_file} does not exist: add the tenant first")
    made = None if password else ftpsaccounts.new_password()
    done = _ftps(layout, name, password or made or "")
    text = config_file.read_text()
    if not re.search(r"^ftps_user\s*=", text, re.MULTILINE):
        text = re.sub(
            r'^(name = ".*")$', rf'\1\nftps_user = "{name}"', text, count=1, flags=re.MULTILINE
        )
        config_file.write_text(text)
        done.append(f"told the service in {config_file} to read {name}'s FTPS uploads")
    return done, made


def _disown(chroot: Path, uid: int | None) -> int:
    """Give root what the removed account owned under ``chroot``; close it to others.

    The next account made may get the same uid, and would then own the earlier
    customer's uploads and archives. Links are re-owned themselves, never
    followed. Returns how many entries the account owned.
    """
    reowned = 0
    entries = [chroot] + [
        Path(folder) / n
        for folder, folders, files in os.walk(chroot, followlinks=False)
        for n in (*folders, *files)
    ]
    for path in entries:
        info = path.lstat()
        if uid is not None and info.st_uid == uid:
            os.lchown(path, 0, -1)
            reowned += 1
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o007:
            path.chmod(stat.S_IMODE(info.st_mode) & ~0o007)
    return reowned


def remove(layout: Layout, name: str, *, purge: bool = False) -> list[str]:
    """Remove a tenant's configuration, key and account (and folders, if purged)."""
    _check_name(name)
    done: list[str] = []
    config_file = layout.tenants_dir / f"{name}.toml"
    if config_file.exists():
        config_file.unlink()
        done.append(f"removed {config_file}")
    keys = layout.keys_dir / name
    if keys.exists():
        keys.unlink()
        done.append(f"removed the key {keys}")
    if ftpsaccounts.disallow(layout.ftps_users, name):
        done.append(f"took {name} off the FTPS users ({layout.ftps_users})")
    uid: int | None = None
    with contextlib.suppress(KeyError):
        uid = pwd.getpwnam(name).pw_uid
        _run("userdel", name)
        done.append(f"removed the account {name}")
    chroot = layout.sftp_root / name
    if purge and chroot.is_dir() and chroot.parent == layout.sftp_root:
        shutil.rmtree(chroot)
        done.append(f"removed {chroot} and every file in it")
    elif chroot.is_dir():
        reowned = _disown(chroot, uid)
        done.append(
            f"kept {chroot}, now owned by root with no access for other accounts "
            f"({reowned} entries were the removed account's): remove it with --purge once "
            "its files are no longer needed"
        )
    if not done:
        raise OnboardingError(f"there is no tenant {name!r} on this host")
    return done
