"""The loop's periodic passes, none of which can end the process.

Every pass the loop makes for a tenant (its look at the folders, a rescan,
retention, handing over ready files, the schema's refresh) and every pass it
makes for the whole service (mail, the heartbeat, the owners) runs through
:meth:`Passes.run`. What one raises is logged as ``service.pass_failed``
with the tenant, the pass, the error's type and the line it came from (never
its message: it can quote a customer's data); that tenant's pass is then
skipped for a while, twice as long after each failure in a row, up to an
hour, and every other tenant and pass goes on. The next success is logged
as ``service.pass_recovered``.

Only what makes the whole service unsound goes through: a
:class:`watcher.errors.StateError` (the journal unusable, the state folder
gone; the shared database away is one, which the loop waits out).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from watcher.errors import StateError

if TYPE_CHECKING:
    from collections.abc import Callable

    from structlog.typing import FilteringBoundLogger

__all__ = ["Passes", "where"]

_T = TypeVar("_T")
_FIRST_DELAY = 5.0
_LONGEST_DELAY = 3600.0


def where(exc: BaseException) -> str | None:
    """The file and line an unexpected error came from (no message: it could hold data)."""
    trace = exc.__traceback__
    while trace is not None and trace.tb_next is not None:
        trace = trace.tb_next
    if trace is None:
        return None
    return f"{Path(trace.tb_frame.f_code.co_filename).name}:{trace.tb_lineno}"


class Passes:
    """Runs each pass of each tenant, and backs off the ones that fail."""

    def __init__(
        self,
        log: FilteringBoundLogger,
        *,
        first_delay: float = _FIRST_DELAY,
        longest_delay: float = _LONGEST_DELAY,
    ) -> None:
        self.log = log
        self.first_delay = first_delay
        self.longest_delay = longest_delay
        # Per (pass, tenant): failures in a row, and when the pass may run again.
        self._failing: dict[tuple[str, str | None], tuple[int, float]] = {}

    def run(self, name: str, tenant: str | None, action: Callable[[], _T], now: float) -> _T | None:
        """``action()``, unless this pass of ``tenant`` is backing off; None when it did not run.

        Args:
            name: the pass, as the log shows it (``retention``, ``rescan``...).
            tenant: whose pass it is, None for the whole service's.
            action: the pass.
            now: the service's monotonic clock.
        """
        key = (name, tenant)
        failures, due = self._failing.get(key, (0, 0.0))
        if now < due:
            return None
        try:
            result = action()
        except StateError:
            raise  # the journal or the state folder: the loop decides
        except Exception as exc:  # noqa: BLE001 - one pass failing must not stop the service
            failures += 1
            delay = min(self.first_delay * 2 ** (failures - 1), self.longest_delay)
            self._failing[key] = (failures, now + delay)
            self.log.error(
                "service.pass_failed",
                tenant=tenant,
                task=name,
                error=type(exc).__name__,
                where=where(exc),
                failures=failures,
                retry_in=round(delay, 1),
            )
            return None
        if failures:
            del self._failing[key]
            self.log.info("service.pass_recovered", tenant=tenant, task=name, failures=failures)
        return result

    def failing(self) -> list[tuple[str, str | None]]:
        """The passes backing off now, as (pass, tenant)."""
        return sorted(self._failing, key=lambda k: (k[0], k[1] or ""))
