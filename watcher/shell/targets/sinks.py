"""Where valid users go: the User Import API, or the embedded user store.

A sink takes rows (the spreadsheet row number under ``"row"`` and the API
attributes, empty ones left out) and reports one :class:`Outcome` per row as
it learns it. When it cannot go on (the API is down after every retry, or the
tenant's token is refused) it raises :class:`SinkUnavailableError`; rows it has
not reported stay pending and are sent again on the next run.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

__all__ = ["Outcome", "Row", "Sink"]

Row = dict[str, str | int]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What became of one row: imported, or refused with the API's own words."""

    row: int
    imported: bool
    code: str | None = None
    message: str | None = None


class Sink(Protocol):
    """Something that takes users."""

    kind: str

    async def push(
        self, rows: Iterable[Mapping[str, str | int | None]], report: Callable[[Outcome], None]
    ) -> None:
        """Send ``rows``, calling ``report`` once per row as its outcome is known."""
        ...  # pragma: no cover - a protocol

    def concurrency(self) -> tuple[int, int] | None:
        """The lowest and highest number of requests in flight at once, if it varies."""
        ...  # pragma: no cover - a protocol
