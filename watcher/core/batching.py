"""Gathering a tenant's ready files into batches: pure, with the clock passed in.

A window opens when the first file becomes ready and closes ``window``
seconds later; the files that became ready in between form one batch. While
a tenant's batch runs, newly ready files wait in the next window, which may
open meanwhile; it is handed over when it has closed and the running batch
is done. Tenants have a batcher each, so one never waits for another.
"""

from __future__ import annotations

__all__ = ["Batcher"]


class Batcher:
    """One tenant's window of ready files."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._names: list[str] = []
        self._opened: float | None = None

    def __contains__(self, name: str) -> bool:
        return name in self._names

    @property
    def waiting(self) -> tuple[str, ...]:
        """Files waiting for the window to close, in the order they were ready."""
        return tuple(self._names)

    def add(self, name: str, now: float) -> None:
        """A file is ready; it opens the window if none is open."""
        if name in self._names:
            return
        if self._opened is None:
            self._opened = now
        self._names.append(name)

    def discard(self, name: str) -> None:
        """A waiting file went away before its batch."""
        if name in self._names:
            self._names.remove(name)
        if not self._names:
            self._opened = None

    def take(self, now: float, *, busy: bool) -> list[str]:
        """The batch, if the window has closed and no batch of the tenant runs."""
        if busy or self._opened is None or now < self._opened + self.window:
            return []
        names, self._names, self._opened = self._names, [], None
        return names

    def deadline(self) -> float | None:
        """When the open window closes, if one is open."""
        return None if self._opened is None else self._opened + self.window
