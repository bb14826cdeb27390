"""Benchmark: `watcher validate` against a bare polars read of the same file, and its peers.

Run on demand, not by pytest:

    uv run python tests/benchmarks/bench_validate.py [--rows 1000000] [--runs 5] [--quote-all]

With the peers (not dependencies of the package; skipped with a note when
they are not installed):

    uv run --with 'pandera[polars]' --with duckdb python tests/benchmarks/bench_validate.py

It writes a realistic users file (13 columns, about 2% invalid rows of varied
kinds, some quoted values with commas; with ``--quote-all`` every value is
quoted, as many exports write them) into .bench/, then runs, as separate
processes and interleaved so machine noise hits both alike:

- the baseline: ``polars.read_csv(path, infer_schema=False)``
- ``watcher validate --json path`` (with ``--max-rows`` above a million rows)
- the same rules after the bare read, with no field count
  (``tests/benchmarks/rules_only.py``): what the exact count of every row's
  fields costs is the difference to validation
- when installed, pandera-polars with the equivalent checks and duckdb's
  all-varchar read into a table (``tests/benchmarks/peers.py``)

and prints the median wall time and peak memory (ru_maxrss) of each and their
ratios to the read (and validation's to pandera's). The target is
validation within 1.5x the read's time and 1.3x its memory, and faster than
pandera-polars. Over-long rows are left out of the file because the baseline read
refuses them outright; the test suite covers them.

Bytecode for polars and watcher is compiled first, since a machine that sets
PYTHONDONTWRITEBYTECODE would otherwise recompile polars in every process and
hide the difference being measured.
"""

from __future__ import annotations

import argparse
import compileall
import csv
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_TIME = 1.5
TARGET_MEMORY = 1.3

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Fatima", "Gustav", "Hana", "Ivan", "Jo"]
LAST = ["Smith", "O'Brien", "García", "Nguyen", "Kowalski", "Müller", "Brown", "Lee"]
CITIES = ["Toronto", "Montréal", "Vancouver", "Calgary", "Halifax", "Regina", "St. John's"]
PROVINCES = ["ON", "QC", "BC", "AB", "NS", "SK", "NL"]
HEADER = [
    "unique_id", "First Name", "Last Name", "Email", "user_name", "Street", "City",
    "Province", "Postal Code", "phone_cell", "User Type ID", "Date of Birth", "student_no",
]  # fmt: skip


def user(i: int, rng: random.Random) -> list[str]:
    """One valid user row."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    street = f"{rng.randint(1, 9999)} Main St" + (", Apt 4" if i % 40 == 0 else "")
    return [
        f"U{i:08d}",
        first,
        last,
        f"{first.lower()}.{i}@example.org",
        f"user{i}",
        street,
        rng.choice(CITIES),
        rng.choice(PROVINCES),
        f"K{rng.randint(1, 9)}A {rng.randint(1, 9)}B{rng.randint(1, 9)}",
        f"416-555-{rng.randint(0, 9999):04d}",
        str(rng.randint(1, 12)),
        f"{rng.randint(1950, 2008)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        str(rng.randint(10**8, 10**9 - 1)),
    ]


def spoil(row: list[str], kind: int, i: int) -> list[str]:
    """Make ``row`` invalid in one of nine ways."""
    match kind:
        case 0:
            row[3] = "not-an-email"
        case 1:
            row[11] = "1990-02-30"
        case 2:
            row[1] = "X" * 60
        case 3:
            row[10] = "abc"
        case 4:
            row[0] = ""
        case 5:
            row[0] = f"U{max(i - 1, 0):08d}"
        case 6:
            row[0] = f"bad id {i}"
        case 7:
            row = row[:10]
        case _:
            row[7] = "Ontario"
    return row


def write_file(path: Path, rows: int, *, quote_all: bool) -> None:
    """Write the benchmark's users file."""
    rng = random.Random(20261122)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
        writer.writerow(HEADER)
        for i in range(rows):
            row = user(i, rng)
            if rng.random() < 0.02:
                row = spoil(row, i % 9, i)
            writer.writerow(row)


def measure(command: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak MiB and exit status of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def commands_for(path: Path, rows: int) -> dict[str, list[str]]:
    """What each contender runs: the read, validation and the installed peers."""
    commands = {
        "read_csv": [
            sys.executable,
            "-c",
            "import sys, polars; polars.read_csv(sys.argv[1], infer_schema=False)",
            str(path),
        ],
        "validate": [sys.executable, "-m", "watcher", "validate", "--json", str(path)],
        "rules": [sys.executable, str(ROOT / "tests" / "benchmarks" / "rules_only.py"), str(path)],
    }
    if rows > 1_000_000:
        commands["validate"][4:4] = ["--max-rows", str(rows)]
    peers = ROOT / "tests" / "benchmarks" / "peers.py"
    for peer, module in (("pandera", "pandera"), ("duckdb", "duckdb")):
        if importlib.util.find_spec(module) is None:
            print(f"{peer}: not installed, skipped (uv run --with 'pandera[polars]' --with duckdb)")
        else:
            commands[peer] = [sys.executable, str(peers), peer, str(path)]
    return commands


def report(medians: dict[str, tuple[float, float]]) -> None:
    """Each contender's ratios to the bare read, and validation's to pandera's."""
    base_time, base_memory = medians["read_csv"]
    for name, (seconds, memory) in medians.items():
        if name == "read_csv":
            continue
        target = f" (target {TARGET_TIME}x, {TARGET_MEMORY}x)" if name == "validate" else ""
        print(f"  {name:9s} {seconds / base_time:5.2f}x time, "
              f"{memory / base_memory:.2f}x memory of the read{target}")  # fmt: skip
    field_count = medians["validate"][0] - medians["rules"][0]
    print(f"  the field count costs {field_count:.2f} s, {field_count / base_time:.2f}x the read")
    if "pandera" in medians:
        ratio = medians["validate"][0] / medians["pandera"][0]
        print(f"  validate takes {ratio:.2f}x pandera-polars' time (target below 1)")


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quote-all", action="store_true", help="quote every value")
    args = parser.parse_args()
    quoted = "-quoted" if args.quote_all else ""
    path = ROOT / ".bench" / f"users-{args.rows}{quoted}.csv"
    if not path.exists():
        started = time.perf_counter()
        write_file(path, args.rows, quote_all=args.quote_all)
        print(f"wrote {path} in {time.perf_counter() - started:.1f} s")
    import polars as pl  # noqa: PLC0415 - only to find its folder

    for package in (Path(pl.__file__).parent, ROOT / "watcher"):
        compileall.compile_dir(package, quiet=1)
    size = path.stat().st_size / 2**20
    commands = commands_for(path, args.rows)
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in commands}
    measure(commands["read_csv"])  # warm the page cache
    for _ in range(args.runs):
        for name, command in commands.items():
            results[name].append(measure(command))
    every = ", every value quoted" if args.quote_all else ""
    print(f"{args.rows:,} rows{every}, {size:.0f} MiB, {args.runs} runs each, medians:")
    medians = {}
    for name, runs in results.items():
        seconds = statistics.median(r[0] for r in runs)
        memory = statistics.median(r[1] for r in runs)
        medians[name] = (seconds, memory)
        statuses = sorted({r[2] for r in runs})
        print(f"  {name:9s} {seconds:6.2f} s  {memory:7.0f} MiB  exit {statuses}")
    report(medians)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
