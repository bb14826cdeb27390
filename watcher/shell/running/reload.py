"""Taking a changed configuration in without a restart: tenants added, changed, removed.

``watcher tenant add`` writes a file into ``tenants.d/``; an operator edits
one. The loop looks at the configuration's files at every rescan, and at
once on SIGHUP (``systemctl reload``): when their sizes or times changed,
the configuration is loaded again. A configuration that does not load is
refused, said in the log and in ``watcher status``, and the one running
stays. One that loads has its tenants applied: lanes for new tenants, new
lanes for changed ones, none for removed ones; a batch running keeps the
configuration it started with. ``[service]`` and ``[email]`` are read at
start only: a change there is said to need a restart, and waits for one.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.config import load_config
from watcher.errors import ConfigError
from watcher.shell.intake.ftpslog import ftps_users

if TYPE_CHECKING:
    from watcher.config import Config
    from watcher.shell.journal import Journal
    from watcher.shell.running.service import Service

__all__ = ["Reload", "Reloaded", "Watched", "fingerprint", "reload", "tenants_changed"]

_Fingerprint = tuple[tuple[str, int, int], ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Reload:
    """SIGHUP on the service's queue: look at the configuration now."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reloaded:
    """What a configuration loaded again changes in the tenants."""

    config: Config
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    restart_needed: bool  # [service] or [email] changed: applied at the next start

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.restart_needed)


def fingerprint(source: Path) -> _Fingerprint:
    """The configuration's files as they are now: each one's path, size and modification time."""
    found = [_stat(source)]
    try:
        patterns = tomllib.loads(source.read_text(encoding="utf-8")).get("include", [])
    except (OSError, ValueError):
        return tuple(found)
    for pattern in patterns if isinstance(patterns, list) else []:
        if not isinstance(pattern, str):
            continue
        root = Path(pattern).anchor
        matches = Path(root).glob(pattern[len(root) :]) if root else source.parent.glob(pattern)
        found.extend(_stat(path) for path in sorted(matches))
    return tuple(found)


def _stat(path: Path) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), info.st_size, info.st_mtime_ns)


def tenants_changed(running: Config, loaded: Config) -> Reloaded:
    """What ``loaded`` changes in ``running``'s tenants (its other sections kept as they run)."""
    before = {t.name: t for t in running.tenants}
    after = {t.name: t for t in loaded.tenants}
    return Reloaded(
        config=dataclasses.replace(running, tenants=loaded.tenants),
        added=tuple(name for name in after if name not in before),
        changed=tuple(name for name in after if name in before and after[name] != before[name]),
        removed=tuple(name for name in before if name not in after),
        restart_needed=(loaded.service, loaded.email) != (running.service, running.email),
    )


class Watched:
    """The configuration the service runs, and whether its files changed since it was read."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._seen = fingerprint(config.source)
        # The problems of the last configuration refused (None: the running one is the latest).
        self.refused: str | None = None

    def look(self, *, force: bool = False) -> Reloaded | None:
        """A change to apply, when the files changed (or ``force``) and they load; else None.

        Raises:
            ConfigError: the files changed and no longer load; the running
                configuration stays (:attr:`refused` says why).
        """
        now = fingerprint(self.config.source)
        if now == self._seen and not force:
            return None
        self._seen = now
        try:
            loaded = load_config(self.config.source)
        except ConfigError as exc:
            self.refused = str(exc)
            raise
        self.refused = None
        change = tenants_changed(self.config, loaded)
        self.config = change.config
        return change or None


def reload(service: Service, journal: Journal, now: float, *, force: bool = False) -> None:
    """Look at the configuration's files, and put a changed configuration to work.

    ``force`` (SIGHUP) loads it again even when no file seems to have changed.
    """
    try:
        change = service.watched.look(force=force)
    except ConfigError as exc:
        service.log.error("config.reload_refused", problems=exc.problems)
        return
    if change is None:
        return
    config = change.config
    names = [t.name for t in config.tenants]
    service.config = config
    service.runtime = dataclasses.replace(service.runtime, config=config)
    service.workers.runtime, service.workers.config = service.runtime, config
    service.ownership.tenants = names  # with a shared database: leases taken at the next turn
    if service.state.database is None:  # alone, an instance owns every tenant
        service.ownership.owned = frozenset(names)
        service.ownership.share = len(names)
    else:  # a removed tenant's lease is given up, for no instance to take
        for name in sorted(set(change.removed) & service.ownership.owned):
            service.ownership.release(name)
    if service.metrics is not None:
        service.metrics.add_tenants(names)
    if service.listener is not None:
        service.listener.config = config
    if service.ftps is not None:
        service.ftps.users = ftps_users(config)
    service.roster.retenant(change, journal, now)
    if change.restart_needed:
        service.log.warning(
            "config.restart_needed", detail="[service] or [email] changed: restart to apply it"
        )
    service.log.info(
        "config.reloaded", added=change.added, changed=change.changed, removed=change.removed
    )
