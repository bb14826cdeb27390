"""What the check lane answered: one line per file checked, for the page and ``watcher status``.

A check is never a batch (it touches no row state, no safeguard, no API), so
its answers are kept apart: when, which file, how many rows and how many
would fail, and the file's own failure code if it had one. No values: the
same as a batch's counts. The same file answered again after a crash keeps
its first line (its id is made from the file's identity).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.shell.journal._database import Database

__all__ = ["Check", "Checks", "Lately"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One file the check lane answered."""

    id: str
    tenant: str
    name: str
    checked_at: float
    rows: int
    failed: int
    code: str | None = None  # the file's own failure (a refusal, a header no schema knows)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Lately:
    """A tenant's check lane over a span: files answered, how many would import whole."""

    files: int = 0
    clean: int = 0  # neither a failing row nor a failure of the file's own
    last: float | None = None


class Checks:
    """The check lane's answers in one journal."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, check: Check) -> None:
        """Keep an answer; one already kept under the same id stays as it was."""
        self.db.execute(
            "INSERT INTO checks (id, tenant, name, checked_at, rows, failed, code)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                check.id,
                check.tenant,
                check.name,
                check.checked_at,
                check.rows,
                check.failed,
                check.code,
            ),
        )

    def recent(self, tenant: str, limit: int = 20) -> list[Check]:
        """The tenant's last ``limit`` answers, newest first."""
        found = self.db.execute(
            "SELECT id, tenant, name, checked_at, rows, failed, code FROM checks"
            " WHERE tenant = ? ORDER BY checked_at DESC LIMIT ?",
            (tenant, limit),
        ).fetchall()
        return [
            Check(id=i, tenant=t, name=n, checked_at=at, rows=r, failed=f, code=c)
            for i, t, n, at, r, f, c in found
        ]

    def lately(self, since: float, tenant: str | None = None) -> dict[str, Lately]:
        """Per tenant (or only ``tenant``), the answers given since ``since``: count, clean, last.

        The week's answers are picked by time first (a year of answers is
        not read to find them), then summed per tenant.
        """
        mine, args = ("", ()) if tenant is None else (" AND tenant = ?", (tenant,))
        found = self.db.execute(
            "WITH lately AS MATERIALIZED (SELECT tenant, failed, code, checked_at FROM checks"  # noqa: S608 - constants
            f" WHERE checked_at >= ?{mine}) SELECT tenant, COUNT(*),"
            " SUM(CASE WHEN failed = 0 AND code IS NULL THEN 1 ELSE 0 END), MAX(checked_at)"
            " FROM lately GROUP BY tenant",
            (since, *args),
        ).fetchall()
        return {
            name: Lately(files=int(files), clean=int(clean or 0), last=last)
            for name, files, clean, last in found
        }
