"""The schema in force for each tenant, reloaded when its file changes.

Operators edit ``schema/*.json`` while the service runs. Before each batch
(and every five seconds) the file is looked at; a changed file is loaded and
checked, and only a schema that passes replaces the one in force. A broken
update is logged with every problem and refused, and the previous schema
stays in force, so files keep being processed as before.

The schema in force is also kept in the state folder (``schemas/<tenant>.json``,
its exact text), so a restart with a broken file on disk (an upgrade, a
half-finished edit) still has the last good schema, and says so loudly.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from watcher.core.schema_parser import parse_schema, read_schema_file
from watcher.errors import SchemaError
from watcher.shell.files import replace_file

if TYPE_CHECKING:
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.core.schema import Schema

__all__ = ["InForce", "Schemas"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InForce:
    """A tenant's schema in force: its text, the parsed schema, and where from."""

    text: bytes
    schema: Schema
    path: Path

    @classmethod
    def from_file(cls, path: Path) -> InForce:
        """The schema in ``path``, as it would be in force.

        Raises:
            SchemaError: the file cannot be read or is not a valid schema.
        """
        text, schema = read_schema_file(path)
        return cls(text=text, schema=schema, path=path)


class Schemas:
    """The schemas in force, one per tenant."""

    def __init__(self, log: FilteringBoundLogger, keep: Path) -> None:
        self.log = log
        self.keep = keep
        self._in_force: dict[str, InForce] = {}
        self._seen: dict[str, tuple[int, int, int] | None] = {}
        self._refused: dict[str, list[str]] = {}

    def refused(self, tenant: str) -> list[str] | None:
        """Why the file on disk is not in force, or None when it is."""
        return self._refused.get(tenant)

    def _kept(self, tenant: str) -> Path:
        return self.keep / f"{tenant}.json"

    def _remember(self, tenant: str, text: bytes) -> None:
        kept = self._kept(tenant)
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            replace_file(kept.parent, kept.name, text)
        except OSError as exc:
            self.log.error("schema.not_kept", tenant=tenant, path=str(kept), error=exc.strerror)

    def _fall_back(self, tenant: str, path: Path) -> InForce | None:
        """At start, with a broken file on disk: the schema last in force, from the state folder."""
        kept = self._kept(tenant)
        if tenant in self._in_force:
            return None
        try:
            text = kept.read_bytes()
            schema = parse_schema(text, source=str(kept))
        except (OSError, SchemaError):
            return None
        self._in_force[tenant] = InForce(text=text, schema=schema, path=path)
        self.log.error(
            "schema.kept",
            tenant=tenant,
            path=str(path),
            version=schema.label,
            digest=schema.digest,
            problems=self._refused.get(tenant, []),
        )
        return self._in_force[tenant]

    def current(self, tenant: str, path: Path) -> InForce | None:
        """The schema in force for ``tenant``, after looking at its file."""
        self.refresh(tenant, path)
        return self._in_force.get(tenant)

    def refresh(self, tenant: str, path: Path) -> None:
        """Load ``path`` if it changed since last time; keep the old one if it is broken."""
        try:
            info = os.stat(path)  # noqa: PTH116 - one call for the three fields
            stamp: tuple[int, int, int] | None = (info.st_ino, info.st_size, info.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp == self._seen.get(tenant) and tenant in self._seen:
            return
        self._seen[tenant] = stamp
        previous = self._in_force.get(tenant)
        try:
            text = path.read_bytes()
            schema = parse_schema(text, source=str(path))
        except OSError as exc:
            self._refused[tenant] = [f"cannot be read: {exc.strerror}"]
            previous = previous or self._fall_back(tenant, path)
            self.log.error(
                "schema.unreadable",
                tenant=tenant,
                path=str(path),
                error=exc.strerror,
                in_force=previous.schema.label if previous else None,
            )
            return
        except SchemaError as exc:
            self._refused[tenant] = list(exc.problems)
            previous = previous or self._fall_back(tenant, path)
            self.log.error(
                "schema.rejected",
                tenant=tenant,
                path=str(path),
                problems=list(exc.problems),
                in_force=previous.schema.label if previous else None,
            )
            return
        self._refused.pop(tenant, None)
        if previous is not None and previous.schema.digest == schema.digest:
            return
        self._in_force[tenant] = InForce(text=text, schema=schema, path=path)
        self._remember(tenant, text)
        if previous is None:
            self.log.info(
                "schema.loaded",
                tenant=tenant,
                path=str(path),
                version=schema.label,
                fields=len(schema.fields),
            )
        else:
            self.log.info(
                "schema.updated",
                tenant=tenant,
                path=str(path),
                version=schema.label,
                previous=previous.schema.label,
                fields=len(schema.fields),
            )
