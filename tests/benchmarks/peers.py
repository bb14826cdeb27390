"""The peers ``bench_validate.py`` measures ``watcher validate`` against, one per process.

    python tests/benchmarks/peers.py pandera|duckdb PATH

``pandera`` reads the file as text with polars and checks it with
pandera-polars against the rules the shipped schema states for the
benchmark's columns (required, pattern, length, email, integer with a
minimum, date, unique keys), collecting every failure (``lazy=True``); it
prints how many rows failed. ``duckdb`` reads the file into a table of text
(``all_varchar``), with no checks. Neither is a dependency of the package:
the benchmark runs them only where they are installed.
"""

from __future__ import annotations

import sys

import polars as pl

# The shipped schema's email rule (watcher.core.rules.EMAIL_PATTERN), copied
# so this script imports nothing of the package it is compared with.
EMAIL = r"^[^\s@\"(),:;<>\[\]\\]+@[^\s@\"(),:;<>\[\]\\.]+(?:\.[^\s@\"(),:;<>\[\]\\.]+)+$"
INTEGER = r"^\s*[+-]?[0-9]+\s*$"
# (header, most characters, unique) of the benchmark's free-text columns.
LENGTHS = [
    ("First Name", 50, False),
    ("Last Name", 50, False),
    ("user_name", 50, True),
    ("City", 50, False),
    ("Province", 2, False),
    ("Postal Code", 20, False),
    ("phone_cell", 20, False),
]


def pandera(path: str) -> int:
    """Check the file with pandera-polars; the number of rows that failed."""
    import pandera.polars as pa  # noqa: PLC0415 - optional, and only here
    from pandera.errors import SchemaErrors  # noqa: PLC0415

    def stripped_matches(pattern: str) -> pa.Check:
        return pa.Check(
            lambda data: data.lazyframe.select(
                pl.col(data.key).str.strip_chars().str.contains(pattern)
            )
        )

    def at_least_zero(data: pa.PolarsData) -> pl.LazyFrame:
        number = pl.col(data.key).str.strip_chars().cast(pl.Int64, strict=False)
        checked: pl.LazyFrame = data.lazyframe.select(number.is_null() | (number >= 0))
        return checked

    def a_date(data: pa.PolarsData) -> pl.LazyFrame:
        text = pl.col(data.key).str.strip_chars()
        dated = text.str.to_date("%Y-%m-%d", strict=False).is_not_null()
        checked: pl.LazyFrame = data.lazyframe.select(dated)
        return checked

    columns = {
        "unique_id": pa.Column(
            str,
            nullable=False,
            unique=True,
            checks=[pa.Check.str_length(max_value=50), stripped_matches(r"^[A-Za-z0-9-]+$")],
        ),
        "Email": pa.Column(
            str, nullable=True, checks=[pa.Check.str_length(max_value=100), stripped_matches(EMAIL)]
        ),
        "User Type ID": pa.Column(
            str, nullable=True, checks=[stripped_matches(INTEGER), pa.Check(at_least_zero)]
        ),
        "Date of Birth": pa.Column(str, nullable=True, checks=[pa.Check(a_date)]),
        **{
            header: pa.Column(
                str, nullable=True, unique=unique, checks=[pa.Check.str_length(max_value=most)]
            )
            for header, most, unique in LENGTHS
        },
    }
    schema = pa.DataFrameSchema(columns, strict=False)
    frame = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        return int(cases.filter(pl.col("index").is_not_null())["index"].n_unique())
    return 0


def duckdb(path: str) -> int:
    """Read the file into a duckdb table of text; its rows."""
    import duckdb as db  # noqa: PLC0415 - optional, and only here

    connection = db.connect()
    connection.execute(
        "CREATE TABLE users AS SELECT * FROM read_csv(?, all_varchar = true)", [path]
    )
    found = connection.execute("SELECT count(*) FROM users").fetchone()
    return int(found[0]) if found else 0


if __name__ == "__main__":
    which, source = sys.argv[1], sys.argv[2]
    print({"pandera": pandera, "duckdb": duckdb}[which](source))
