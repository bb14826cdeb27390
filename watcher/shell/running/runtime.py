"""One runtime for every process that runs batches: ``watcher run`` and ``watcher process``.

A :class:`Runtime` holds what such a process is given (the configuration,
the state folder, the log, the clocks, the stop event, the metrics) and is
the only maker of a :class:`~watcher.shell.pipeline.context.BatchContext`, so every
batch runner, worker and pass sees the same edges. :meth:`Runtime.hold`
opens, in order, what a process must hold to run batches and closes it in
reverse: the state folder's lock, the tenants it may run (all of them alone;
its share beside other instances on a shared database), the journal, and
the state folder put in order after whatever stopped the last run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import TYPE_CHECKING

from watcher.shell.journal import Journal
from watcher.shell.pipeline.batches import start_up
from watcher.shell.pipeline.context import BatchContext
from watcher.shell.running.ownership import Ownership
from watcher.shell.statedir import StateDir
from watcher.shell.targets.engine import Engine

if TYPE_CHECKING:
    import queue
    import threading
    from collections.abc import Callable, Collection, Iterator

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config
    from watcher.shell.web.metrics import Metrics

__all__ = ["Held", "Runtime"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Held:
    """What :meth:`Runtime.hold` opened: the journal of this thread, and the tenants owned."""

    journal: Journal
    owned: frozenset[str]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    """The edges every batch runner of one process shares."""

    config: Config
    log: FilteringBoundLogger
    stop: threading.Event | None = None
    clock: Callable[[], float] = time.time
    metrics: Metrics | None = None
    state: StateDir = dataclasses.field(init=False)
    # Every tenant's API requests, on one event loop (started when first used).
    engine: Engine = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", StateDir.of(self.config.service))
        object.__setattr__(self, "engine", Engine())

    @property
    def shared(self) -> bool:
        """Whether the journal is a database several instances share."""
        return self.state.database is not None

    def journal(self, *, any_thread: bool = False) -> Journal:
        """A journal connection for the calling thread, or for a run taken in turns."""
        return Journal(self.state.journal, any_thread=any_thread)

    def context(
        self,
        journal: Journal,
        *,
        resend_all: bool = False,
    ) -> BatchContext:
        """The context of a batch runner on ``journal``: the one way to make one."""
        return BatchContext(
            config=self.config,
            journal=journal,
            state=self.state,
            log=self.log,
            clock=self.clock,
            stop=self.stop,
            engine=self.engine,
            resend_all=resend_all,
            metrics=self.metrics,
        )

    def ownership(self, tenants: Collection[str], inbox: queue.Queue[object]) -> Ownership:
        """The leases of ``tenants`` for this process (all of them, alone)."""
        return Ownership(
            self.state, list(tenants), self.config.service.lease_timeout, inbox=inbox, log=self.log
        )

    @contextlib.contextmanager
    def hold(self, ownership: Ownership, *, take_all: bool = False) -> Iterator[Held]:
        """Lock the state folder, own tenants, open the journal, put the state folder in order.

        A long-running service takes its share of the tenants (``take_all``
        false); a run that ends soon takes every tenant no live instance
        owns. Closed in reverse order, the lock last.

        Raises:
            AlreadyRunningError: another process holds the state folder.
        """
        lock = self.state.lock()
        try:
            try:
                owned = frozenset(ownership.take_all() if take_all else ownership.start())
                journal = self.journal()
                try:
                    start_up(self.context(journal), sorted(owned) if self.shared else None)
                    yield Held(journal=journal, owned=owned)
                finally:
                    journal.close()
            finally:
                ownership.stop()
        finally:
            self.engine.close()
            lock.release()
