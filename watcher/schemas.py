"""The schema in force for each tenant, reloaded when its file changes.

Operators edit ``schema/*.json`` while the service runs. Before each batch
(and at every rescan) the file is looked at; a changed file is loaded and
checked, and only a schema that passes replaces the one in force. A broken
update is logged with every problem and refused, and the previous schema
stays in force, so files keep being processed as before.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from watcher.errors import SchemaError
from watcher.schema import Schema, parse_schema

if TYPE_CHECKING:
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InForce:
    """A tenant's schema in force: its text, the parsed schema, and where from."""

    text: bytes
    schema: Schema
    path: Path


class Schemas:
    """The schemas in force, one per tenant."""

    def __init__(self, log: FilteringBoundLogger) -> None:
        self.log = log
        self._in_force: dict[str, InForce] = {}
        self._seen: dict[str, tuple[int, int, int] | None] = {}

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
            self.log.error(
                "schema.unreadable",
                tenant=tenant,
                path=str(path),
                error=exc.strerror,
                in_force=previous.schema.label if previous else None,
            )
            return
        except SchemaError as exc:
            self.log.error(
                "schema.rejected",
                tenant=tenant,
                path=str(path),
                problems=list(exc.problems),
                in_force=previous.schema.label if previous else None,
            )
            return
        if previous is not None and previous.schema.digest == schema.digest:
            return
        self._in_force[tenant] = InForce(text=text, schema=schema, path=path)
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
