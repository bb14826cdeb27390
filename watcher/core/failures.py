"""A file's failure list from its table: the rows that failed, as the failure CSV lists them.

One builder for the import lane's ``.failures.csv`` (and the report's
attachment) and the check lane's ``.check.csv``. Pure: a table and the
failures in, bytes out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.core.reporting import FailureList, failure_csv
from watcher.core.tables import marked

if TYPE_CHECKING:
    from collections.abc import Iterable

    from watcher.core.tables import Table

__all__ = ["failure_list"]


def failure_list(table: Table, failures: Iterable[tuple[int, str | None, str, str]]) -> FailureList:
    """The failed rows of ``table``, each with its failures (row, field, code, message)."""
    by_row: dict[int, list[tuple[str | None, str, str]]] = {}
    for row, field, code, message in failures:
        by_row.setdefault(row, []).append((field, code, message))
    numbers = sorted(by_row)
    wanted = marked(table.frame.height, [n - table.first_row for n in numbers])
    values = table.frame.filter(wanted).rows()
    return failure_csv(table.headers, zip(numbers, values, strict=True), by_row)
