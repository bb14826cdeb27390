"""The rules alone, as a reference for ``bench_validate.py``: what the field count costs.

    python tests/benchmarks/rules_only.py PATH

Reads the file with a bare ``polars.read_csv`` (short rows padded, extra
fields dropped) and runs the shipped schema's rules over it as ``watcher
validate --json`` does, writing the failures with its ``write_json``, but never counts a
record's fields: short and long rows go unreported. The gap between this and
``watcher validate`` is the price of the exact field count; the gap between
this and the bare read is the price of the rules.
"""

from __future__ import annotations

import sys

import polars as pl

from watcher.cli.commands import write_json
from watcher.core.schema_parser import load_schema, shipped_schema_path
from watcher.core.tables import Table, column
from watcher.core.validation import validate


def main(path: str) -> int:
    """Validate ``path`` without a field count; 1 when rows failed, as the command does."""
    schema = load_schema(shipped_schema_path())
    frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    headers = tuple(frame.columns)
    frame.columns = [column(i) for i in range(frame.width)]
    blank = frame.select(pl.all_horizontal(pl.all().is_null())).to_series()
    no_ragged = pl.DataFrame(schema={"record": pl.UInt32, "fields": pl.UInt32})
    table = Table(headers=headers, frame=frame, encoding="utf-8", ragged=no_ragged, blank=blank)
    report = validate(table, schema)
    write_json({"rows_failed": report.rows_failed}, report.failures)
    return 1 if report.rows_failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
