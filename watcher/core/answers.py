"""What a check answers, for scripts and people: the ``.check.json`` document and its reasons.

A file put in ``check/`` is answered beside it (:data:`ANSWERS`): counts,
codes and fields, never a value. Pure: a validation report in, bytes out.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.changes import preview
from watcher.core.names import shown
from watcher.core.records import Reason

if TYPE_CHECKING:
    from watcher.core.changes import ChangeSummary
    from watcher.core.validation import ValidationReport

__all__ = ["ANSWERS", "check_document", "is_answer", "reasons"]

# What the check lane writes beside a checked file: never taken for an upload.
ANSWERS = (".check.json", ".check.csv")


def is_answer(name: str) -> bool:
    """Whether ``name`` is one of the check lane's own answers."""
    return name.endswith(ANSWERS)


def reasons(failures: pl.DataFrame) -> tuple[Reason, ...]:
    """Failures counted by field and code, most frequent first, each with an example."""
    if failures.is_empty():
        return ()
    counted = (
        failures.group_by("field", "code")
        .agg(pl.len().alias("count"), pl.col("message").cast(pl.String).min().alias("example"))
        .sort(["count", "field", "code"], descending=[True, False, False], nulls_last=False)
    )
    return tuple(
        Reason(count=count, field=field, code=str(code), example=str(example))
        for field, code, count, example in counted.select(
            "field", "code", "count", "example"
        ).iter_rows()
    )


def check_document(
    name: str,
    report: ValidationReport,
    listed: pl.DataFrame,
    *,
    schema_label: str,
    checked_at: float,
    in_list: int,
    changes: ChangeSummary | None = None,
) -> bytes:
    """The check's answer for scripts: counts, codes and fields, no values.

    ``listed`` holds the failures of the rows listed (row, field, code,
    message); ``in_list`` how many rows the ``.check.csv`` beside holds;
    ``changes`` what importing it now would do (None: it could not be read).
    """
    failed: dict[int, dict[str, list[str | None]]] = {}
    for row, field, code, _ in listed.iter_rows():
        entry = failed.setdefault(row, {"codes": [], "fields": []})
        entry["codes"].append(code)
        entry["fields"].append(field)
    if report.file_errors:
        status = "not_importable"
    elif report.rows_failed:
        status = "would_partly_fail"
    else:
        status = "would_import"
    document = {
        "file": shown(name),
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(checked_at)),
        "schema": schema_label,
        "status": status,
        "encoding": report.encoding,
        "notes": list(report.notes),
        "rows": {
            "total": report.rows_total,
            "valid": report.rows_valid,
            "failed": report.rows_failed,
            "blank": report.rows_blank,
        },
        "file_error": None
        if not report.file_errors
        else {
            "code": report.file_errors[0].code.value,
            "message": " ".join(p.message for p in report.file_errors),
        },
        "reasons": [
            {"field": r.field, "code": r.code, "count": r.count} for r in reasons(report.failures)
        ],
        "failed_rows": [{"row": row, **entry} for row, entry in sorted(failed.items())],
        "failed_rows_complete": len(failed) == report.rows_failed,
        # How many of the failed rows the .check.csv beside lists (it stops short of 50 MiB).
        "failed_rows_in_csv": in_list,
        # New, changed (by column), unchanged and missing users: counts and names, no values.
        "changes": None if changes is None else preview(changes),
    }
    return (json.dumps(document, indent=2) + "\n").encode()
