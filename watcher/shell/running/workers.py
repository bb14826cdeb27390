"""The service's workers: each tenant's batches taken in turns, checks, notices and mail.

A tenant whose run could not finish (rows pending: the API is down, or its
token refused) is tried again at rescans, each time after twice the delay,
up to an hour, so an API that stays down is not hammered.

Each tenant's batches are one run at a time, taken in turns on the import
engine (:mod:`watcher.shell.pipeline.turns`): steps on its few shared
threads, pushes as tasks of its loop, so one tenant's slow API holds no
thread and its huge file only its own turns. A run opens its own journal
connection, runs :func:`watcher.shell.pipeline.batches.run_tenant`, delivers
the mail its batch wrote, and puts a :class:`Done` on the service's queue.
An unexpected error in a batch is logged and ends only that run: the
service goes on. Checks and notices, short and rare, take threads of their own.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from typing import TYPE_CHECKING

from watcher.core.states import MessageState
from watcher.shell.mail import mailer
from watcher.shell.pipeline.batches import run_tenant
from watcher.shell.pipeline.checking import check_files
from watcher.shell.pipeline.reports import write_strays_notice
from watcher.shell.pipeline.turns import on_the_loop
from watcher.shell.running.passes import where

if TYPE_CHECKING:
    import queue
    from collections.abc import Collection, Mapping, Sequence

    from watcher.config import TenantConfig
    from watcher.core.refusals import Refused
    from watcher.shell.journal import Journal
    from watcher.shell.pipeline.turns import Turns
    from watcher.shell.running.runtime import Runtime
    from watcher.shell.running.schemas import InForce

__all__ = ["MAIL_THREADS", "Done", "Workers"]

_LONGEST_RETRY_DELAY = 3600.0
MAIL_THREADS = 2


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """A tenant's worker finished: whether every batch it ran completed."""

    tenant: str
    complete: bool


class Workers:
    """The worker threads of one service."""

    def __init__(self, runtime: Runtime, *, inbox: queue.Queue[object]) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.state = runtime.state
        self.inbox = inbox
        self.log = runtime.log
        self.stop = runtime.stop or threading.Event()
        # Each tenant's batches: a run taken in turns on the engine (its loop, its pool).
        self._tenants: dict[str, concurrent.futures.Future[bool]] = {}
        self._checks: dict[str, threading.Thread] = {}
        self._mail: threading.Thread | None = None
        # Each run's mail, after its batches: SMTP's waits never hold the steps' threads.
        self._mailing = concurrent.futures.ThreadPoolExecutor(
            max_workers=MAIL_THREADS, thread_name_prefix="mail"
        )
        self._notices: list[threading.Thread] = []
        # Per tenant: how often each file in check/ failed to be answered (by name and identity).
        self._check_tries: dict[str, dict[tuple[str, int, int], int]] = {}
        # Per tenant: the delay before unfinished batches are tried again, and when.
        self._retries: dict[str, tuple[float, float]] = {}
        self.done = 0

    def busy(self, tenant: str) -> bool:
        """Whether a batch of ``tenant`` is running."""
        run = self._tenants.get(tenant)
        return run is not None and not run.done()

    def finished(self, done: Done, now: float) -> None:
        """A worker ended: when its tenant's unfinished batches may be tried again."""
        self.done += 1
        rescan = self.config.service.rescan_interval
        delay, _ = self._retries.get(done.tenant, (rescan, 0.0))
        delay = rescan if done.complete else min(delay * 2, _LONGEST_RETRY_DELAY)
        self._retries[done.tenant] = (delay, now + delay)

    def retry_due(self, tenant: str, now: float) -> float | None:
        """The delay the tenant waited, if its unfinished batches may be tried now."""
        delay, due = self._retries.get(tenant, (self.config.service.rescan_interval, 0.0))
        return None if self.busy(tenant) or now < due else delay

    def running(self) -> int:
        """How many tenants have a batch running."""
        return sum(1 for name in self._tenants if self.busy(name))

    def start(
        self,
        tenant: TenantConfig,
        names: Sequence[str] = (),
        schema: InForce | None = None,
        refusals: Sequence[Refused] = (),
        *,
        waited: Mapping[str, float] | None = None,
    ) -> None:
        """Run the tenant's batches in its worker: unfinished ones, then ``names``, ``refusals``.

        ``waited`` says how long ago each name was first heard of.
        """

        def run() -> Turns[bool]:
            journal = self.runtime.journal(any_thread=True)
            try:
                ctx = self.runtime.context(journal)
                results = yield from run_tenant(ctx, tenant, names, schema, refusals, waited=waited)
                return all(r.complete for r in results)
            except Exception as exc:  # noqa: BLE001 - one batch failing must not stop the service
                self.log.error(
                    "batch.failed",
                    tenant=tenant.name,
                    error=type(exc).__name__,
                    where=where(exc),
                )
                return False
            finally:
                journal.close()

        engine = self.runtime.engine
        running = engine.submit(on_the_loop(run(), engine.pool))
        # Done once the batches ran and the mail they wrote went out.
        whole: concurrent.futures.Future[bool] = concurrent.futures.Future()

        def finish(*, complete: bool) -> None:
            whole.set_result(complete)
            self.inbox.put(Done(tenant=tenant.name, complete=complete))

        def ran(finished: concurrent.futures.Future[bool]) -> None:
            if finished.cancelled() or finished.exception() is not None:
                finish(complete=False)
                return
            complete = finished.result()
            # Mail waits on the SMTP server: on threads of its own, not the steps' few.
            try:
                sent = self._mailing.submit(self._deliver, tenant)
            except RuntimeError:  # stopping: the mail waits for the next start
                finish(complete=complete)
                return
            sent.add_done_callback(lambda _: finish(complete=complete))

        self._tenants[tenant.name] = whole
        running.add_done_callback(ran)

    def _deliver(self, tenant: TenantConfig) -> None:
        """Send the mail a tenant's batches wrote (or, alone, all waiting mail)."""
        journal = self.runtime.journal()
        try:
            mailer.deliver(
                self.config, journal, self.state, self.log, self._mail_of(tenant), stop=self.stop
            )
        except Exception as exc:  # noqa: BLE001 - mail failing must not stop the service
            self.log.error("mail.failed", error=type(exc).__name__, where=where(exc))
        finally:
            journal.close()

    def checking(self, tenant: str) -> bool:
        """Whether a check of ``tenant``'s check folder is running."""
        worker = self._checks.get(tenant)
        return worker is not None and worker.is_alive()

    def start_check(
        self, tenant: TenantConfig, names: Sequence[str], schema: InForce | None
    ) -> None:
        """Check ``names`` in the tenant's check folder, beside its batches, not behind them.

        With no names, only the tenant's waiting check answers are mailed.
        """
        tries = self._check_tries.setdefault(tenant.name, {})

        def body() -> None:
            journal = self.runtime.journal()
            try:
                ctx = self.runtime.context(journal)
                check_files(ctx, tenant, names, schema, tries)
                mailer.deliver(
                    self.config,
                    journal,
                    self.state,
                    self.log,
                    self._mail_of(tenant),
                    stop=self.stop,
                )
            except Exception as exc:  # noqa: BLE001 - a check failing must not stop the service
                self.log.error(
                    "check.failed",
                    tenant=tenant.name,
                    file=None,
                    error=type(exc).__name__,
                    where=where(exc),
                    attempt=None,
                )
            finally:
                journal.close()
                self.inbox.put(None)  # the loop takes a look: the status changed

        worker = threading.Thread(target=body, name=f"check-{tenant.name}", daemon=True)
        self._checks[tenant.name] = worker
        worker.start()

    def tell_strays(self, tenant: TenantConfig, files: Sequence[str]) -> None:
        """Queue, in the background, the notice of files in subfolders (mailed with the rest)."""

        def body() -> None:
            journal = self.runtime.journal()
            try:
                write_strays_notice(self.runtime.context(journal), tenant, files)
            except Exception as exc:  # noqa: BLE001 - a notice failing must not stop the service
                self.log.error(
                    "notice.failed", tenant=tenant.name, error=type(exc).__name__, where=where(exc)
                )
            finally:
                journal.close()

        worker = threading.Thread(target=body, name=f"notice-{tenant.name}", daemon=True)
        self._notices.append(worker)
        worker.start()

    def _mail_of(self, tenant: TenantConfig) -> list[str] | None:
        """Whose mail a tenant's worker sends: all waiting mail, or (shared) the tenant's."""
        return None if self.state.database is None else [tenant.name]

    def deliver_mail(self, journal: Journal, tenants: Collection[str] | None = None) -> None:
        """Retry waiting mail (of ``tenants``) in the background, when nothing else sends it."""
        if self.config.email is None or journal.messages.count(MessageState.QUEUED) == 0:
            return
        if self._mail is not None and self._mail.is_alive():
            return

        def body() -> None:
            journal = self.runtime.journal()
            try:
                mailer.deliver(self.config, journal, self.state, self.log, tenants, stop=self.stop)
            except Exception as exc:  # noqa: BLE001 - mail failing must not stop the service
                self.log.error("mail.failed", error=type(exc).__name__, where=where(exc))
            finally:
                journal.close()

        self._mail = threading.Thread(target=body, name="mail", daemon=True)
        self._mail.start()

    def join(self) -> None:
        """Wait for every worker (after the stop event is set, they end soon)."""
        concurrent.futures.wait(list(self._tenants.values()))
        self._mailing.shutdown(wait=True)
        for worker in (*self._checks.values(), *self._notices):
            worker.join()
        if self._mail is not None:
            self._mail.join()
