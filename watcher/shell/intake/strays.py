"""Files in a drop folder that will never be imported, each reported once.

A file put in a subfolder (only the drop folder itself is imported) and a
temporary upload name (``*.filepart``, dotfiles) left unchanged for
``leftover_after``: the customer may think they sent something. Each is
logged once per file (by name and identity), so a rescan every minute stays
quiet; the customer is told of files in subfolders once, by email.
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

from watcher.core.records import Identity

if TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Set as AbstractSet

    from structlog.typing import FilteringBoundLogger

    from watcher.shell.intake.dropfolder import DropFolder

__all__ = ["Strays"]


class Strays:
    """The strays of one drop folder, and which were reported."""

    def __init__(self, tenant: str, *, leftover_after: float, log: FilteringBoundLogger) -> None:
        self.tenant = tenant
        self.leftover_after = leftover_after
        self.log = log
        self._leftovers: dict[str, tuple[Identity, float]] = {}
        self._reported: set[tuple[str, Identity]] = set()
        # Files in subfolders reported but not yet told to the customer.
        self.untold: list[str] = []

    def in_subfolders(self, folder: DropFolder, names: Iterable[str]) -> None:
        """Report, once each, files put in the subfolders ``names``."""
        for name, inner, info in [(n, *entry) for n in names for entry in folder.inside(n)]:
            if not stat.S_ISREG(info.st_mode):
                continue
            key = (f"{name}/{inner}", Identity.of(info))
            if key in self._reported:
                continue
            self._reported.add(key)
            self.untold.append(key[0])
            self.log.warning(
                "file.in_subfolder",
                tenant=self.tenant,
                folder=name,
                file=inner,
                bytes=info.st_size,
            )

    def tell(self) -> list[str]:
        """The files in subfolders not told of yet (``folder/name``), now told of."""
        told, self.untold = self.untold, []
        return told

    def leftover(self, name: str, identity: Identity, now: float) -> None:
        """Report, once, a temporary upload file left unchanged for long."""
        seen = self._leftovers.get(name)
        if seen is None or seen[0] != identity:
            self._leftovers[name] = (identity, now)
            return
        if (name, identity) in self._reported:
            return
        if now - seen[1] >= self.leftover_after:
            self._reported.add((name, identity))
            self.log.warning(
                "file.left_unfinished",
                tenant=self.tenant,
                file=name,
                bytes=identity.size,
                unchanged_for=round(now - seen[1]),
            )

    def keep_only(self, names: AbstractSet[str]) -> None:
        """Forget leftovers no longer in the folder."""
        self._leftovers = {n: v for n, v in self._leftovers.items() if n in names}
