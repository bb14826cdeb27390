"""Which tenants this instance runs: all of them alone, its share of them beside others.

Without a shared database an instance runs every configured tenant (its
state folder's lock keeps a second one out). With PostgreSQL, instances
share the tenants through leases (:mod:`watcher.shell.journal.leases`): a
thread of its own renews this instance's leases and takes free tenants up
to a fair share (the tenants divided by the live instances, rounded up),
and tells the service's loop on its queue (:class:`Owned`). The loop gives
back idle tenants above the share, so a second instance started beside a
first one gets work.

The timing, for a lease timeout T: a lease runs 3/4 T past its last
renewal; owners renew and others look for free tenants every T/4, so a
dead owner's tenants are taken within T of its death. An instance that
cannot renew must stop touching its tenants before another may take them:
when T/2 passes without a renewal (the database unreachable, the process
stalled), or a renewal shows a lease lost, the instance logs ``lease.lost``
and exits at once with status 75, as a SIGKILL would end it, a quarter of T
before its leases run out; systemd starts it again and the journal resumes
what it left. A database restart shorter than T/2 is ridden out: the
thread reconnects and renews.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import threading
import time
from typing import TYPE_CHECKING

from watcher.errors import DatabaseUnavailableError
from watcher.shell.journal import Journal

if TYPE_CHECKING:
    import queue
    from collections.abc import Callable, Sequence

    from structlog.typing import FilteringBoundLogger

    from watcher.shell.statedir import StateDir

__all__ = ["EXIT_LEASE_LOST", "Owned", "Ownership"]

EXIT_LEASE_LOST = 75  # EX_TEMPFAIL: systemd's Restart=on-failure starts the instance again
_LEASE = 0.75  # of the lease timeout: how long a renewal holds
_EVERY = 0.25  # of the lease timeout: how often leases are renewed and free tenants sought
_FENCE_AFTER = 0.5  # of the lease timeout without a renewal: stop before the leases end


@dataclasses.dataclass(frozen=True, slots=True)
class Owned:
    """The tenants this instance owns now (on the service's queue when it changes)."""

    tenants: frozenset[str]


def _exit_now(code: int) -> None:
    """End the process at once, as a SIGKILL would: no thread is waited for."""
    sys.stdout.flush()
    os._exit(code)


class Ownership:
    """This instance's tenants, and the thread that keeps their leases."""

    def __init__(
        self,
        state: StateDir,
        tenants: Sequence[str],
        lease_timeout: float,
        *,
        inbox: queue.Queue[object],
        log: FilteringBoundLogger,
        fence: Callable[[int], None] = _exit_now,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.timer = timer
        self.tenants = list(tenants)
        self.timeout = lease_timeout
        self.inbox = inbox
        self.log = log
        self.fence = fence
        self.instance = state.instance or "local"
        self.shared = state.database is not None
        self.owned: frozenset[str] = frozenset() if self.shared else frozenset(self.tenants)
        self.share = len(self.tenants)
        self._journal: Journal | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed = self.timer()
        self._outage = False

    def start(self) -> frozenset[str]:
        """Join the other instances and take a first share; the tenants owned now."""
        return self._join(all_free=False)

    def take_all(self) -> frozenset[str]:
        """For one pass (``--once``, ``process``): every tenant no live instance owns."""
        return self._join(all_free=True)

    def _join(self, *, all_free: bool) -> frozenset[str]:
        """Say this instance is alive, take tenants, and keep their leases from now on."""
        if not self.shared:
            return self.owned
        assert self.state.database is not None  # noqa: S101 - shared
        self._journal = Journal(self.state.database, dedicated=True)
        self._journal.leases.join(self.instance, os.uname().nodename, os.getpid())
        self._renewed = self.timer()
        if all_free:
            taken = self._journal.leases.take(
                self.instance, self.tenants, len(self.tenants), self.timeout * _LEASE
            )
            self.owned = frozenset(taken)
        else:
            self._turn()
        self._thread = threading.Thread(target=self._keep, name="leases", daemon=True)
        self._thread.start()
        return self.owned

    def excess(self) -> int:
        """How many tenants above its fair share this instance owns."""
        return max(0, len(self.owned) - self.share)

    def release(self, tenant: str) -> None:
        """Give an idle tenant back: the loop has stopped watching it."""
        with self._lock:
            assert self._journal is not None  # noqa: S101 - only shared instances release
            self._journal.leases.release(self.instance, tenant)
            self.owned = self.owned - {tenant}
        self.log.info("lease.released", tenant=tenant, instance=self.instance)

    def stop(self) -> None:
        """A clean stop: leases given up at once, so another instance need not wait them out."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._journal is None:
            return
        try:
            self._journal.leases.leave(self.instance)
        except DatabaseUnavailableError as exc:
            self.log.warning("lease.not_left", instance=self.instance, error=str(exc))
        self._journal.close()

    def _keep(self) -> None:
        """Renew, take a share, and fence when the leases cannot be trusted."""
        while not self._stop.wait(self.timeout * _EVERY):
            try:
                self._turn()
            except DatabaseUnavailableError as exc:
                if not self._outage:
                    self._outage = True
                    self.log.warning("database.unavailable", error=str(exc))
            if self.timer() - self._renewed > self.timeout * _FENCE_AFTER:
                self._lost(self.owned, "not renewed in time")
                return

    def _turn(self) -> None:
        """One renewal and, below the fair share, a try at free tenants."""
        assert self._journal is not None  # noqa: S101 - shared
        leases = self._journal.leases
        with self._lock:
            kept = leases.renew(self.instance, self.timeout * _LEASE)
            self._renewed = self.timer()
            if self._outage:
                self._outage = False
                self.log.info("database.available", instance=self.instance)
            lost = self.owned - kept
            if lost:
                self._lost(lost, "owned by another instance")
                return
            live = max(1, leases.live_instances(self.timeout))
            self.share = math.ceil(len(self.tenants) / live)
            want = self.share - len(kept)
            taken = set()
            if want > 0:
                taken = leases.take(self.instance, self.tenants, want, self.timeout * _LEASE)
            now_owned = frozenset(kept | taken)
            changed = now_owned != self.owned
            self.owned = now_owned
        if taken:
            self.log.info("lease.taken", tenants=sorted(taken), instance=self.instance)
        if changed:
            self.inbox.put(Owned(now_owned))

    def _lost(self, tenants: frozenset[str], why: str) -> None:
        self.log.error(
            "lease.lost", tenants=sorted(tenants), instance=self.instance, why=why,
            exit=EXIT_LEASE_LOST,
        )  # fmt: skip
        self.fence(EXIT_LEASE_LOST)
