"""Benchmark: a 100,000-row workbook read and validated, against polars reading it alone.

    uv run python tests/benchmarks/bench_sheets.py [--rows 100000] [--runs 5]

Writes an ``.xlsx`` of ``--rows`` users (text IDs, dates as date cells, a
number column) with openpyxl, and the same rows as CSV, then times, in this
process and one after the other, the best of ``--runs``:

- ``polars.read_excel`` of the workbook alone, every column as text (the
  baseline: calamine through fastexcel, the engine the service uses);
- the service's read and validation of the workbook (``read_table`` with the
  shipped schema, then ``validate``): bounds checked, sheet chosen, date
  cells in the field's format, number cells in text columns looked for;
- the service's read and validation of the same rows as CSV.

``--number-ids`` types the IDs as numbers: the reader then reads that column
a second time to tell number cells from text (and notes them).

Target: the workbook's read and validation at most 1.5x the baseline.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import openpyxl
import polars as pl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from watcher.core.reading import read_table  # noqa: E402 - after the path is set
from watcher.core.schema_parser import load_schema, shipped_schema_path  # noqa: E402
from watcher.core.validation import validate  # noqa: E402

TARGET = 1.5
HEADER = ["unique_id", "first_name", "last_name", "email", "date_of_birth", "user_type_id"]


def rows(count: int, *, numbers: bool) -> list[list[object]]:
    """The users, as cells; with ``numbers``, IDs typed as numbers (the slower path)."""
    return [
        [
            1_000_000 + n if numbers else f"S-{n:07d}",
            f"First{n % 997}",
            f"Last{n % 991}",
            f"u{n}@bench.example",
            dt.date(1980 + n % 30, 1 + n % 12, 1 + n % 28),
            n % 7,
        ]
        for n in range(count)
    ]


def best(action: object, runs: int) -> float:
    """The fastest of ``runs`` calls, in seconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    """Write the files, time the three reads, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--number-ids", action="store_true")
    args = parser.parse_args()
    schema = load_schema(shipped_schema_path())
    users = rows(args.rows, numbers=args.number_ids)
    with tempfile.TemporaryDirectory() as tmp:
        xlsx, csv = Path(tmp) / "users.xlsx", Path(tmp) / "users.csv"
        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("Users")
        sheet.append(HEADER)
        for row in users:
            sheet.append(row)
        book.save(xlsx)
        with csv.open("w") as out:
            out.write(",".join(HEADER) + "\n")
            for row in users:
                out.write(",".join(str(v) for v in row) + "\n")

        def ours(path: Path) -> None:
            report = validate(read_table(path, schema=schema), schema)
            assert report.rows_valid == args.rows, report.file_errors or report.failures.head()
            assert len(report.notes) == (
                2 if args.number_ids and path == xlsx else 1 if path == xlsx else 0
            )

        alone = best(lambda: pl.read_excel(xlsx, infer_schema_length=0), args.runs)
        workbook = best(lambda: ours(xlsx), args.runs)
        plain = best(lambda: ours(csv), args.runs)
        size = xlsx.stat().st_size / 1024 / 1024
    print(f"{args.rows:,} users, a {size:.1f} MiB workbook, best of {args.runs}:")
    print(f"  polars.read_excel alone           {alone:6.3f} s")
    print(
        f"  read and validate the workbook    {workbook:6.3f} s  {workbook / alone:.2f}x "
        f"(target at most {TARGET}x)"
    )
    print(f"  read and validate the same CSV    {plain:6.3f} s  {plain / alone:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
