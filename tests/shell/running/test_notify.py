"""The systemd notification protocol, against a socket standing in for systemd."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.support import Site
from watcher.shell.running.notify import Notifier

if TYPE_CHECKING:
    from pathlib import Path


def test_outside_systemd_nothing_is_sent() -> None:
    """Without NOTIFY_SOCKET the notifier is silent and never pings."""
    notifier = Notifier({})
    notifier.ready("x")
    assert notifier.ping(100.0, healthy=True) is False


def test_pings_come_at_half_the_interval_and_only_when_healthy() -> None:
    """WATCHDOG_USEC=10 s means a ping at most every 5 s, and none while unhealthy."""
    notifier = Notifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.ping(0.0, healthy=True)
    assert not notifier.ping(4.9, healthy=True)
    assert not notifier.ping(5.0, healthy=False)
    assert not notifier.ping(5.1, healthy=True)  # the unhealthy turn used the slot
    assert notifier.ping(10.0, healthy=True)
    assert notifier.next_ping() == 15.0


def test_a_watchdog_meant_for_another_process_is_ignored() -> None:
    """WATCHDOG_PID names the process that must ping."""
    assert Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).interval is None


@pytest.mark.integration
def test_the_service_reports_ready_pings_and_stops_pinging_when_its_state_cannot_be_written(
    tmp_path: Path,
) -> None:
    """READY=1 after start, WATCHDOG=1 while healthy, none once status.json cannot be written."""
    site = Site(tmp_path, service="heartbeat_interval = 3600")
    address = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(address))
        listener.settimeout(0.5)
        log = tmp_path / "watcher.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "--config", str(site.config)],
                stdout=output,
                env={**os.environ, "NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "2000000"},
            )

        def receive(seconds: float) -> list[str]:
            got: list[str] = []
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    got.append(listener.recv(4096).decode())
                except TimeoutError:
                    continue
            return got

        try:
            first = receive(8)
            assert first[0].startswith("READY=1\nSTATUS=watching 1 drop folders")
            assert first.count("WATCHDOG=1") >= 3
            status = site.state / "status.json"
            status.unlink()
            status.mkdir()
            (status / "in-the-way").write_text("")
            # The idle service rewrites status.json within 5 s; until it fails
            # to, it has no reason to stop pinging.
            deadline = time.monotonic() + 15
            while "service.state_unwritable" not in log.read_text():
                assert time.monotonic() < deadline, "the failed write was never reported"
                receive(0.2)
            receive(0.1)  # a ping sent just before the failed write
            assert "WATCHDOG=1" not in receive(4)
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
            assert "STOPPING=1\nSTATUS=stopping" in receive(1)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
