"""Reading one configuration value of each kind, collecting every problem.

A :class:`Values` reader never raises on a bad value: it notes the problem
with its key (``tenant[0] "jcu".api.url: must be ...``) and returns None, so
one pass over the file lists everything that is wrong.
"""

from __future__ import annotations

import difflib
import re
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from watcher.config.model import Secret

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Values", "made", "parse_duration", "parse_size"]

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?"
    r"\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
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
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_ACCOUNT = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_SECRET_KEYS = frozenset({"token", "password", "api_token", "apiToken", "secret"})

_T = TypeVar("_T")


def parse_duration(value: object) -> float | None:
    """Seconds from a number or text such as "5m", "90s", "1h30m", "7d"; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str) or not value.strip():
        return None
    match = _DURATION.match(value)
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


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


def made(build: Callable[..., _T], values: Mapping[str, object]) -> _T | None:
    """``build(**values)``, or None when a value was bad (read as None).

    Keys the file left out are left out of ``values``, so the dataclass's own
    default applies: each default is stated once, in :mod:`watcher.config.model`.
    """
    if any(value is None for value in values.values()):
        return None
    return build(**values)


class Values:
    """Reads the values of one configuration file, noting each problem with its key."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        """Note that the value at ``where`` is wrong, and how."""
        self.problems.append(f"{where}: {message}")

    def keys(self, where: str, table: Mapping[str, object], known: frozenset[str]) -> None:
        """Note every key of ``table`` that is not ``known``, with a likely one."""
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
        """``value`` when it is a table."""
        if not isinstance(value, dict):
            self.problem(where, "must be a table")
            return None
        return value

    def path(self, where: str, value: object) -> Path | None:
        """A path, relative ones from the configuration file's folder."""
        if not isinstance(value, str) or not value.strip():
            self.problem(where, "must be a path")
            return None
        return (self.base / Path(value).expanduser()).resolve()

    def duration(self, where: str, value: object) -> float | None:
        """A positive duration in seconds."""
        seconds = parse_duration(value)
        if seconds is None or seconds <= 0:
            self.problem(where, f"must be a duration such as '5m', '90s' or 300 (got {value!r})")
            return None
        return seconds

    def integer(self, where: str, value: object, low: int, high: int) -> int | None:
        """A whole number from ``low`` to ``high``."""
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem(where, f"must be a whole number from {low} to {high} (got {value!r})")
            return None
        return value

    def rate(self, where: str, value: object) -> float | None:
        """A positive number of events per second."""
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.problem(where, f"must be requests per second (got {value!r})")
            return None
        return float(value)

    def share(self, where: str, value: object) -> float | None:
        """A part of a whole: a number above 0 and at most 1."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            self.problem(where, f"must be a share from 0 to 1, such as 0.2 (got {value!r})")
            return None
        return float(value)

    def flag(self, where: str, value: object) -> bool | None:
        """True or false."""
        if not isinstance(value, bool):
            self.problem(where, f"must be true or false (got {value!r})")
            return None
        return value

    def text(self, where: str, value: object) -> str | None:
        """Non-empty text, stripped."""
        if not isinstance(value, str) or not value.strip():
            self.problem(where, "must be non-empty text")
            return None
        return value.strip()

    def address(self, where: str, value: object) -> str | None:
        """An email address, with a display name or without."""
        text = self.text(where, value)
        if text is None:
            return None
        _, address = parseaddr(text)
        if not _ADDRESS.match(address):
            self.problem(where, f"must be an email address (got {text!r})")
            return None
        return text

    def addresses(self, where: str, value: object) -> tuple[str, ...] | None:
        """A list of email addresses."""
        if not isinstance(value, list) or not value:
            self.problem(where, "must be a list of email addresses")
            return None
        found = [self.address(f"{where}[{i}]", item) for i, item in enumerate(value)]
        return None if None in found else tuple(a for a in found if a is not None)

    def listen(self, where: str, value: object) -> str | None:
        """An address to listen on: ``host:port``, an IPv6 host in brackets."""
        text = self.text(where, value)
        if text is None:
            return None
        host, _, port = text.rpartition(":")
        if not host.strip("[]") or not port.isdigit() or not 0 <= int(port) <= 65535:  # noqa: PLR2004
            self.problem(where, f"must be host:port, such as '127.0.0.1:9464' (got {text!r})")
            return None
        return text

    def account(self, where: str, value: object) -> str | None:
        """A system account's name, as ``useradd`` accepts it."""
        text = self.text(where, value)
        if text is None:
            return None
        if not _ACCOUNT.match(text):
            self.problem(where, f"must be an account name such as 'jcu' (got {text!r})")
            return None
        return text

    def choice(self, where: str, value: object, options: tuple[str, ...]) -> str | None:
        """One of ``options``."""
        if value not in options:
            listed = " or ".join(f"'{o}'" for o in options)
            self.problem(where, f"must be {listed} (got {value!r})")
            return None
        return str(value)

    def secret(self, where: str, table: Mapping[str, object], what: str) -> Secret | None:
        """Where the secret ``what`` lives: ``<what>_file`` or ``<what>_env``; None if neither."""
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
