"""Giving a tenant's account FTPS: a password, vsftpd's chroot, the allowed list, the config.

vsftpd logs customers in with a password, checked by PAM against the
system's hash (``deploy/vsftpd/pam.d/user-import-ftps``): the password is set
with ``chpasswd``, which hashes it as the system does, and is never stored or
logged in the clear. vsftpd takes the chroot from the account's home folder
(``passwd_chroot_enable``): ``/srv/sftp/jcu/./upload`` chroots to
``/srv/sftp/jcu`` and starts in ``/upload``, the folder sshd's ``-d /upload``
starts SFTP sessions in (sshd ignores a home it cannot reach inside the
chroot). Only accounts listed in the allowed-users file may log in over FTPS
(``userlist_file`` and the PAM file both read it).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from typing import TYPE_CHECKING

from watcher.errors import OnboardingError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["allow", "disallow", "ftps_home", "new_password", "read_password", "set_password"]

_MIN_LENGTH = 12
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def new_password() -> str:
    """A random password: 24 characters from the URL-safe alphabet (144 bits)."""
    return secrets.token_urlsafe(18)


def read_password(path: Path) -> str:
    """The password in ``path``: its first line, at least 12 characters, no control character."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OnboardingError(f"{path}: cannot read the password ({exc})") from exc
    password = text.split("\n", 1)[0].rstrip("\r")
    if len(password) < _MIN_LENGTH or _CONTROL.search(password):
        raise OnboardingError(
            f"{path}: the password must be one line of at least {_MIN_LENGTH} characters, "
            "with no control characters"
        )
    return password


def ftps_home(chroot: Path) -> str:
    """The home folder that makes vsftpd chroot to ``chroot`` and start in ``upload/``."""
    return f"{chroot}/./upload"


def set_password(name: str, password: str, chroot: Path) -> None:
    """Set the account's password (hashed by the system) and the home vsftpd chroots by."""
    # Fixed commands with a checked account name; the password only on stdin.
    result = subprocess.run(
        ["chpasswd"],  # noqa: S607 - the system's own, from PATH as root has it
        input=f"{name}:{password}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OnboardingError(f"chpasswd failed for {name}: {result.stderr.strip()}")
    result = subprocess.run(  # noqa: S603
        ["usermod", "--home", ftps_home(chroot), name],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise OnboardingError(f"usermod --home failed for {name}: {result.stderr.strip()}")


def allow(users: Path, name: str) -> bool:
    """Add ``name`` to the FTPS allowed-users file; whether it was missing."""
    names = _read(users)
    if name in names:
        return False
    _write(users, [*names, name])
    return True


def disallow(users: Path, name: str) -> bool:
    """Take ``name`` off the FTPS allowed-users file; whether it was there."""
    names = _read(users)
    if name not in names:
        return False
    _write(users, [n for n in names if n != name])
    return True


def _read(users: Path) -> list[str]:
    try:
        return [line.strip() for line in users.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return []


def _write(users: Path, names: list[str]) -> None:
    """Replace the file whole, root's and readable (it holds account names only)."""
    users.parent.mkdir(parents=True, exist_ok=True)
    temporary = users.with_name(f".{users.name}.{secrets.token_hex(4)}")
    temporary.write_text("".join(f"{n}\n" for n in names))
    os.chown(temporary, 0, 0)
    temporary.chmod(0o644)
    temporary.replace(users)
