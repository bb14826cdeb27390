"""SIGTERM and SIGINT turned into a stop request, SIGHUP into a reload, nothing in the handler.

A Python signal handler runs in the main thread between two bytecodes,
whatever that thread holds: structlog's write lock in the middle of a log
line, a queue's lock in the middle of a ``put``. A handler that logs or
puts on a queue can wait for a lock its own thread holds, for ever (the
service once hung 13 minutes after SIGTERM that way). So the handler here is
empty: the interpreter's C-level handler writes the signal's number to a
pipe (:func:`signal.set_wakeup_fd`), and a thread of its own reads the pipe
and asks the service to stop, free to log and take locks like any thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

__all__ = ["STOP_SIGNALS", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _ignore(_number: int, _frame: object) -> None:
    """The Python-level handler: nothing (the wakeup pipe carries the signal)."""


def stop_on_signals(
    request_stop: Callable[[], None],
    log: FilteringBoundLogger,
    *,
    reload: Callable[[], None] | None = None,
) -> None:
    """Make SIGTERM and SIGINT call ``request_stop`` (SIGHUP ``reload``) from a thread, logged.

    Call it from the main thread (as :func:`signal.signal` requires), once.
    """
    read, write = os.pipe()
    os.set_blocking(write, False)  # a full pipe drops a byte, never blocks the handler
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    for number in STOP_SIGNALS:
        signal.signal(number, _ignore)
    if reload is not None:
        signal.signal(signal.SIGHUP, _ignore)

    def listen() -> None:
        while True:
            try:
                got = os.read(read, 64)
            except InterruptedError:  # pragma: no cover - PEP 475 retries it
                continue
            if not got:
                return
            for number in got:
                with contextlib.suppress(ValueError):  # a signal this module did not set
                    name = signal.Signals(number).name
                    if signal.Signals(number) in STOP_SIGNALS:
                        log.info("service.stopping", signal=name)
                        request_stop()
                    elif signal.Signals(number) is signal.SIGHUP and reload is not None:
                        log.info("service.reloading", signal=name)
                        reload()

    threading.Thread(target=listen, name="signals", daemon=True).start()
