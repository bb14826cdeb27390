"""Benchmark: the running service's latency, idle CPU and memory over many batches.

    uv run python tests/benchmarks/bench_service.py [--uploads 20] [--idle 60] [--batches 1000]

It runs ``watcher run`` as a separate process on a temporary folder and
measures, from the outside:

- latency: from the end of an upload (the file written and closed) to the
  start of its import (the ``file.claimed`` event), minus the batch window and
  settle time, which are waits by design (median and worst of ``--uploads``);
- idle CPU: CPU seconds the service uses over ``--idle`` seconds with nothing
  to do, scaled to one minute;
- memory: resident set size after 10 batches and after ``--batches`` batches;
- burst: ``--burst`` small files written at once, the time from the last one
  closed to the last one archived, and where the batch spent it (the sum of
  each step's ``duration`` over the files, from the log).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema" / "opscom-users.json"
ROW = "unique_id,email\nU-{n},u{n}@bench.example\n"


def start(folder: Path, window: float, settle: float) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start the service on a fresh folder; its process, drop folder and log."""
    drop = folder / "drop"
    drop.mkdir(parents=True)
    config = folder / "watcher.toml"
    config.write_text(f"""
[service]
state_dir = "{folder / "state"}"
batch_window = {window}
settle_time = {settle}
[[tenant]]
name = "bench"
drop_dir = "{drop}"
schema = "{SCHEMA}"
failed_import_email = "a@bench.example"
reply_to = "b@bench.example"
""")
    log = folder / "watcher.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(config)], stdout=out
        )
    while "service.started" not in log.read_text():
        time.sleep(0.05)
    return process, drop, log


def events(log: Path, name: str) -> list[dict[str, object]]:
    """The log events called ``name``."""
    return [
        json.loads(line)
        for line in log.read_text().splitlines()
        if line.startswith("{") and f'"{name}"' in line
    ]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident set size of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def upload(drop: Path, n: int) -> float:
    """Write one small file as an upload would; the wall time it was closed."""
    with (drop / f"u{n}.csv").open("w") as handle:
        handle.write(ROW.format(n=n))
    return time.time()


def latency(uploads: int, window: float, settle: float) -> list[float]:
    """Seconds from upload end to claim, beyond window and settle, per upload."""
    with tempfile.TemporaryDirectory() as tmp:
        process, drop, log = start(Path(tmp), window, settle)
        delays = []
        try:
            for n in range(uploads):
                closed = upload(drop, n)
                while len(events(log, "file.claimed")) <= n:
                    time.sleep(0.01)
                claimed = events(log, "file.claimed")[n]["ts"]
                when = dt.datetime.fromisoformat(str(claimed)).timestamp()
                delays.append(when - closed - window - settle)
                while len(events(log, "batch.completed")) <= n:
                    time.sleep(0.01)
        finally:
            process.terminate()
            process.wait()
    return delays


def idle_cpu(seconds: float) -> float:
    """CPU seconds per minute with nothing to do."""
    with tempfile.TemporaryDirectory() as tmp:
        process, _, _ = start(Path(tmp), 300, 5)
        try:
            time.sleep(3)
            before = cpu_seconds(process.pid)
            time.sleep(seconds)
            used = cpu_seconds(process.pid) - before
        finally:
            process.terminate()
            process.wait()
    return used * 60 / seconds


def memory(batches: int) -> tuple[float, float]:
    """RSS after 10 batches and after ``batches``."""
    with tempfile.TemporaryDirectory() as tmp:
        process, drop, _log = start(Path(tmp), 0.05, 0.05)
        early = 0.0
        try:
            results = drop / ".bak"
            for n in range(batches):
                upload(drop, n)
                # Each batch leaves one result file in .bak when it is done.
                while not results.exists() or len(list(results.glob("*.json"))) <= n:
                    time.sleep(0.005)
                if n + 1 == 10:
                    early = rss_mib(process.pid)
            late = rss_mib(process.pid)
        finally:
            process.terminate()
            process.wait()
    return early, late


def burst(files: int, window: float, settle: float) -> dict[str, float]:
    """Seconds from the last of ``files`` uploads closed to the last archived, and per step."""
    with tempfile.TemporaryDirectory() as tmp:
        process, drop, log = start(Path(tmp), window, settle)
        try:
            for n in range(files):
                closed = upload(drop, n)
            results = drop / ".bak"
            while not results.exists() or len(list(results.glob("*.result.json"))) < files:
                time.sleep(0.2)
            done = time.time()
            while sum(int(str(b["files"])) for b in events(log, "batch.completed")) < files:
                time.sleep(0.2)
            batches = events(log, "batch.completed")
            figures = {
                "total": done - closed,
                "batches": float(len(batches)),
                "in batches": sum(float(str(b["run"])) for b in batches),
            }
            for name in ("file.validated", "file.imported"):
                figures[name] = sum(float(str(e["duration"])) for e in events(log, name))
        finally:
            process.terminate()
            process.wait()
    return figures


def main() -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--only-burst", action="store_true")
    args = parser.parse_args()
    window = 5.0
    figures = burst(args.burst, window=window, settle=1.0)
    print(
        f"burst of {args.burst} files: last archived {figures['total']:.1f} s after the last "
        f"upload (window {window:g} s), in {figures['batches']:.0f} batches taking "
        f"{figures['in batches']:.1f} s: validation {figures['file.validated']:.1f} s, "
        f"import {figures['file.imported']:.1f} s, the rest (claim, report, archive) "
        f"{figures['in batches'] - figures['file.validated'] - figures['file.imported']:.1f} s"
    )
    if args.only_burst:
        return 0
    delays = latency(args.uploads, window=1.0, settle=1.0)
    print(f"latency beyond window + settle: median {statistics.median(delays) * 1000:.0f} ms, "
          f"worst {max(delays) * 1000:.0f} ms over {args.uploads} uploads")  # fmt: skip
    print(f"idle CPU: {idle_cpu(args.idle):.3f} s per minute")
    early, late = memory(args.batches)
    print(f"memory: {early:.1f} MiB after 10 batches, {late:.1f} MiB after {args.batches} "
          f"({late / early:.2f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
