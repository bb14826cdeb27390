"""Benchmark: a nightly snapshot sent again costs only what changed, and who left.

    uv run python tests/benchmarks/bench_snapshot.py [--users 100000] [--changed 0.01]
        [--missing 0.005] [--latency 0.02]

A lean HTTP server in a separate process (``tests.support.leanapi``) answers
each push after the latency. ``watcher process`` imports a snapshot of
``--users`` users, then the same snapshot with ``--changed`` of the users'
emails changed and ``--missing`` of them left out, as two whole runs. With
``--missing`` above 0 the tenant is a full snapshot that deactivates its
missing users (``--missing 0``: a partial tenant, as before full snapshots).
The script prints the requests each run sent (the second must equal the
changed plus the missing rows) and the wall time of the second run against
the first (target: at most 1/20).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.leanapi import server as api_server  # noqa: E402 - after the path is set
from tests.support.leanapi import stats  # noqa: E402

TARGET = 1 / 20
TARGET_CPU_MS = 0.25


def snapshot(
    path: Path, users: int, changed_every: int | None, missing_every: int | None = None
) -> tuple[int, int]:
    """Write a users file; how many rows differ from the plain snapshot, how many are left out."""
    changed = missing = 0
    with path.open("w") as out:
        out.write("unique_id,first_name,last_name,email,user_type_id\n")
        for i in range(users):
            if missing_every and i % missing_every == 1:
                missing += 1
                continue
            domain = "staff.example.edu"
            if changed_every and i % changed_every == 0:
                domain, changed = "new.example.edu", changed + 1
            out.write(f"U{i:07d},First{i % 997},Last{i % 991},u{i}@{domain},{i % 5}\n")
    return changed, missing


def process(config: Path, drop: Path) -> tuple[float, float, dict[str, object]]:
    """Run ``watcher process`` on the drop folder's file; seconds, CPU seconds, the summary."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "process", "--json", "--config", str(config),
         "--tenant", "bench", str(drop / "users.csv")],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    if result.returncode != 0:
        raise SystemExit(f"watcher process failed ({result.returncode}): {result.stderr}")
    (summary,) = [
        e
        for e in (json.loads(line) for line in result.stdout.splitlines() if line.startswith("{"))
        if e["event"] == "batch.completed"
    ]
    return elapsed, used, summary


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--missing", type=float, default=0.005)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    folder = ROOT / ".bench" / "snapshot"
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    drop = folder / "drop"
    drop.mkdir(parents=True)
    (folder / "token").write_text("bench\n")
    os.chmod(folder / "token", 0o600)  # noqa: PTH101 - a secret file the config names
    server, url = api_server(args.latency, 0.0)
    config = folder / "watcher.toml"
    config.write_text(
        f'[service]\nstate_dir = "state"\n\n[[tenant]]\nname = "bench"\ndrop_dir = "drop"\n'
        f'schema = "{ROOT / "schema" / "opscom-users.json"}"\n'
        'failed_import_email = "r@bench.example"\nreply_to = "a@bench.example"\n'
        + ('snapshot = "full"\nmissing = "deactivate"\n' if args.missing else "")
        + f'[tenant.api]\nurl = "{url}"\ntoken_file = "token"\n'
        'deactivate_fields = { user_status = "inactive" }\n'
    )
    try:
        snapshot(drop / "users.csv", args.users, None)
        first, first_cpu, one = process(config, drop)
        sent_first = stats(url)["ok"]
        missing_every = round(1 / args.missing) if args.missing else None
        changed, missing = snapshot(
            drop / "users.csv", args.users, round(1 / args.changed), missing_every
        )
        second, _, two = process(config, drop)
        sent_second = stats(url)["ok"]
    finally:
        server.terminate()
        server.wait()
    print(f"{args.users:,} users at {args.latency * 1000:.0f} ms API latency:")
    print(f"  first run   {first:7.1f} s  {sent_first:,} POSTs, {one['imported']:,} imported, "
          f"{first_cpu / args.users * 1000:.3f} ms of the process's CPU per user "
          f"(target at most {TARGET_CPU_MS} ms)")  # fmt: skip
    expected = changed + missing
    print(f"  second run  {second:7.1f} s  {sent_second:,} requests for {changed:,} changed rows "
          f"and {missing:,} missing users "
          f"({'equal' if sent_second == expected else 'NOT equal'}), "
          f"{two['unchanged']:,} unchanged, {two['deactivated']:,} deactivated")  # fmt: skip
    print(f"  ratio       {second / first:.3f} of the first run (target at most {TARGET:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
