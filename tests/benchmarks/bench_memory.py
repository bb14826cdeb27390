"""Benchmark: peak memory per MiB of input, for the worst shapes, on every path that validates.

    uv run python tests/benchmarks/bench_memory.py [--mib 20] [--shapes quotes,short,...]
        [--paths process,validate,check]

Each shape is a file of about ``--mib`` MiB built to make one part of the
pipeline work hardest for its size: every line a failing row, the smallest
rows a CSV can have, quoted values spanning lines, rows with many extra
fields, every value of every row breaking a rule; a workbook of users, and a
workbook that unpacks to a thousand times its size. Each file goes through each
path as a separate process: a batch (``watcher process``, embedded store,
outbox), ``watcher validate --json``, and the check lane (``watcher run
--once`` with the file in ``check/``); its peak resident set size is read
from the kernel (``RUSAGE_CHILDREN``).

The baseline is the same command with no file, measured in the same run: the
interpreter, polars and the service's own code. A file over ``max_rows``
(one million) is refused after counting its lines and costs no more than
that; ``--mib 1.9`` keeps the one-byte rows under the limit. The figure that matters
is ``(peak - baseline) / input MiB``: what each MiB a customer uploads costs,
whatever its shape. One process serves every tenant, so this bounds how large
a file the host's memory takes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema" / "opscom-users.json"
HEADER = "unique_id,first_name,email,user_type_id\n"
# Every column of the shipped schema, for rows where every one of them fails.
WIDE = [f["possibleNames"][0] for f in json.loads(SCHEMA.read_text())["fields"]]

# Each shape: a line (or two) repeated to the size.
SHAPES = {
    "valid": None,  # ordinary users, for comparison
    "quotes": '"""\n',  # pairs of lines make one value spanning them, each row too short
    "short": "x\n",  # one value of four: too few fields
    "extra": "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p\n",  # twelve values past the last column
    "bad": "!,!,!,!\n",  # four rule failures per row
    "wide": ",".join("!" * len(WIDE)) + "\n",  # a failure in every column of the schema
    "huge": "",  # one row whose first_name is one quoted value of the whole size
    "workbook": "",  # ordinary users in an .xlsx of the size
    "bomb": "",  # an .xlsx of the size whose sheet unpacks to a thousand times more
}
WORKBOOKS = ("workbook", "bomb")


def write_workbook(path: Path, shape: str, size: int) -> None:
    """An .xlsx of about ``size`` bytes: users, or a sheet of padding a thousand times larger."""
    import zipfile  # noqa: PLC0415 - workbook shapes only

    if shape == "bomb":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bomb:
            bomb.writestr("xl/workbook.xml", "<workbook/>")
            with bomb.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                chunk = b" " * (1024 * 1024)
                for _ in range(size // 1024):  # about a thousand times the size
                    sheet.write(chunk)
        return
    import openpyxl  # noqa: PLC0415 - a development dependency

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Users")
    sheet.append(HEADER.strip().split(","))
    # About 23 bytes of zipped sheet per row here: rows for the size asked.
    for n in range(size // 23):
        sheet.append([f"U-{n:07d}", f"Name{n}", f"u{n}@bench.example", n % 7])
    book.save(path)


def write(path: Path, shape: str, size: int) -> None:
    """Write a file of about ``size`` bytes in ``shape``."""
    if shape in WORKBOOKS:
        write_workbook(path, shape, size)
        return
    with path.open("w") as out:
        out.write(",".join(WIDE) + "\n" if shape == "wide" else HEADER)
        line = SHAPES[shape]
        if shape == "huge":
            out.write('U-1,"' + "A" * size + '",a@bench.example,1\n')
            return
        if line is None:
            n = 0
            written = 0
            while written < size:
                row = f"U-{n:07d},Name{n},u{n}@bench.example,{n % 7}\n"
                out.write(row)
                written += len(row)
                n += 1
            return
        out.write(line * (size // len(line)))


PATHS = ("process", "validate", "check")


def run(folder: Path, data: Path | None, path: str) -> tuple[float, float, str]:
    """Take ``data`` (or nothing) through ``path`` in a fresh site; peak MiB, seconds, status.

    ``process``: ``watcher process`` (a batch); ``validate``: ``watcher
    validate --json`` to /dev/null; ``check``: ``watcher run --once`` with the
    file in the check folder.
    """
    drop = folder / "drop"
    (drop / "check").mkdir(parents=True)
    config = folder / "watcher.toml"
    config.write_text(f"""
[service]
state_dir = "{folder / "state"}"
max_file_size = "200MB"
settle_time = 0.1
[[tenant]]
name = "bench"
drop_dir = "{drop}"
schema = "{SCHEMA}"
failed_import_email = "a@bench.example"
reply_to = "b@bench.example"
""")
    place = drop / "check" if path == "check" else drop
    files = []
    if data is not None:
        data.rename(place / data.name)
        files = [str(place / data.name)]
    command = {
        "process": ["process", "--config", str(config), "--tenant", "bench", *files],
        "validate": ["validate", "--json", *(files or [str(SCHEMA)])],
        "check": ["run", "--once", "--config", str(config)],
    }[path]
    code = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=False)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code, sys.executable, "-m", "watcher", *command],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seconds = time.monotonic() - started
    return int(result.stdout.strip()) / 1024, seconds, _status(drop, path, folder / "state")


def _status(drop: Path, path: str, state: Path) -> str:
    """What the path made of the file, and the largest list and message it wrote."""
    if path == "validate":
        return "-"
    if path == "check":
        answers = list((drop / "check").glob("*.check.json"))
        status = json.loads(answers[0].read_text())["status"] if answers else "?"
        lists = list((drop / "check").glob("*.check.csv"))
    else:
        results = list((drop / ".bak").glob("*.result.json"))
        status = json.loads(results[0].read_text())["status"] if results else "?"
        lists = list((drop / ".bak").glob("*.failures.csv"))
    largest = max((p.stat().st_size for p in lists), default=0)
    message = max((p.stat().st_size for p in (state / "outbox").glob("*.eml")), default=0)
    return f"{status}, list {largest / 1024:,.0f} KiB, email {message / 1024:,.0f} KiB"


def main() -> None:
    """Measure every shape through every path and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=float, default=20.0)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--paths", default=",".join(PATHS))
    args = parser.parse_args()
    size = int(args.mib * 1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        for path in args.paths.split(","):
            baseline, _, _ = run(base / f"baseline-{path}", None, path)
            print(f"\n{path}: baseline (no file) {baseline:.0f} MiB peak RSS")
            print(
                f"{'shape':8} {'input MiB':>9} {'peak MiB':>9} {'per MiB':>8} {'seconds':>8}  status"
            )
            for shape in args.shapes.split(","):
                suffix = ".xlsx" if shape in WORKBOOKS else ".csv"
                data = base / f"{path}-{shape}{suffix}"
                write(data, shape, size)
                mib = data.stat().st_size / 1024 / 1024
                peak, seconds, status = run(base / f"{path}-{shape}", data, path)
                print(
                    f"{shape:8} {mib:9.1f} {peak:9.0f} {(peak - baseline) / mib:8.1f} "
                    f"{seconds:8.1f}  {status}"
                )


if __name__ == "__main__":
    main()
