"""What every step of a batch works with: the configuration, the journal and the edges.

Built once per thread that runs batches (a journal connection belongs to one
thread) and handed to each step. The edges have production defaults; tests
hand in a clock, a stop event or an import engine.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config
    from watcher.shell.journal import Journal
    from watcher.shell.statedir import StateDir
    from watcher.shell.targets.engine import Engine
    from watcher.shell.web.metrics import Metrics

__all__ = ["BatchContext"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchContext:
    """The configuration, the journal, the state folder and the edges of one batch runner."""

    config: Config
    journal: Journal
    state: StateDir
    log: FilteringBoundLogger
    clock: Callable[[], float] = time.time
    # Durations: a monotonic clock, never the wall's.
    timer: Callable[[], float] = time.monotonic
    stop: threading.Event | None = None
    # The process's import engine, where API pushes run (None: each push on a loop of its own).
    engine: Engine | None = None
    # ``watcher process --resend-all``: send every valid row, unchanged or not.
    resend_all: bool = False
    # The running service's metrics, counted as batches and requests happen.
    metrics: Metrics | None = None
