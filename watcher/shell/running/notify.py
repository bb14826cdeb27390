"""systemd's notification protocol: ready, status, watchdog pings, stopping.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (and, with
``WatchdogSec=``, ``WATCHDOG_USEC``); the service sends ``READY=1`` once it
watches its folders and ``WATCHDOG=1`` at half the watchdog interval, but only
while it is healthy, so a service that hangs or can no longer write its state
is restarted. Outside systemd every call does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["Notifier"]


class Notifier:
    """Messages to the service manager, if there is one."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and address.startswith("@"):
            address = "\0" + address[1:]  # an abstract socket
        self.address = address
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        mine = pid is None or pid == str(os.getpid())
        self.interval = int(usec) / 2e6 if usec and usec.isdigit() and mine else None
        self._last_ping = float("-inf")

    def send(self, *fields: str) -> None:
        """Send ``KEY=value`` fields; errors are ignored (systemd may be gone)."""
        if self.address is None:
            return
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
        ):
            sock.sendto("\n".join(fields).encode(), self.address)

    def ready(self, status: str) -> None:
        """Tell systemd the service is up."""
        self.send("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        """Tell systemd the service is shutting down."""
        self.send("STOPPING=1", "STATUS=stopping")

    def next_ping(self) -> float | None:
        """When the next ping is due, if systemd watches this service."""
        return None if self.interval is None else self._last_ping + self.interval

    def ping(self, now: float, *, healthy: bool) -> bool:
        """Pet the watchdog if due and healthy; whether a ping went out."""
        if self.interval is None or now - self._last_ping < self.interval:
            return False
        # An unhealthy turn uses up the slot too: no ping, and no busy loop.
        self._last_ping = now
        if not healthy:
            return False
        self.send("WATCHDOG=1")
        return True
