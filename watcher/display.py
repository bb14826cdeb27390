"""Human-readable renderings of reports: values in, text out."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watcher.validation import ValidationReport

SHOWN_FAILURES = 20


def validation_summary(name: str, report: ValidationReport) -> str:
    """A short account of ``report`` for a terminal."""
    encoding = f" ({report.encoding})" if report.encoding else ""
    lines: list[str] = []
    if report.file_errors:
        counted = f"{report.rows_total:,} rows" if report.table is not None else "no rows"
        lines.append(f"{name}: cannot be imported, {counted} not checked{encoding}")
        lines.extend(f"  {p.code}: {p.message}" for p in report.file_errors)
        return "\n".join(lines)
    lines.append(
        f"{name}: {report.rows_total:,} rows, {report.rows_valid:,} valid, "
        f"{report.rows_failed:,} failed{encoding}"
    )
    lines.extend(f"  note: {note}" for note in report.notes)
    failures = list(report.row_failures())
    if failures:
        width = max(len(str(f.row)) for f in failures[:SHOWN_FAILURES])
        lines.append("")
        lines.extend(
            f"  row {f.row:>{width}}  {f.code:<16} {f.message}" for f in failures[:SHOWN_FAILURES]
        )
        if len(failures) > SHOWN_FAILURES:
            lines.append(
                f"  ... and {len(failures) - SHOWN_FAILURES:,} more; --json lists them all"
            )
        lines.append("")
        lines.append("Most common reasons:")
        counts = Counter(f.code for f in failures)
        lines.extend(f"  {count:>8,}  {code}" for code, count in counts.most_common(5))
    return "\n".join(lines)
