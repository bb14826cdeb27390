"""Benchmark: many tenants at once on SQLite, on PostgreSQL, and on two instances sharing it.

    uv run python tests/benchmarks/bench_hosts.py [--tenants 200] [--rows 2000]
        [--latency 0.02]

Every tenant drops one file of ``--rows`` users at the same moment; the lean
API (``tests.support.leanapi``, a separate process) answers each push after
the latency. In the same run, on fresh folders each time:

- one ``watcher run`` on SQLite (the baseline);
- one ``watcher run`` on PostgreSQL (a throwaway cluster): the time against
  the baseline (target: within 20%, a ratio of at most 1.2);
- two ``watcher run`` instances sharing that database, the tenants spread
  between them: the time against one instance on PostgreSQL (below 1 when a
  second instance adds throughput).

Every set-up polls the folders (``observer = "polling"``), as instances on
shared storage must. Each time is from the files written to the last one
archived. For
PostgreSQL the database's own cost is read from ``pg_stat_statements`` and
``pg_stat_database``: statements and transactions per batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.leanapi import server  # noqa: E402 - after the path is set
from tests.support.postgres import PASSWORD, Cluster, bin_dir  # noqa: E402

SCHEMA = ROOT / "schema" / "opscom-users.json"
TARGET_POSTGRES = 1.2


def write_site(folder: Path, tenants: int, api: str) -> list[Path]:
    """Drop folders and tokens for ``tenants`` tenants; their drop folders."""
    drops = []
    for n in range(tenants):
        drop = folder / "sftp" / f"t{n:03d}" / "upload"
        drop.mkdir(parents=True)
        drops.append(drop)
    token = folder / "api.token"
    token.write_text("tok\n")
    token.chmod(0o600)
    (folder / "tenants.toml").write_text(
        "".join(
            f"""
[[tenant]]
name = "t{n:03d}"
drop_dir = "sftp/t{n:03d}/upload"
schema = "{SCHEMA}"
failed_import_email = "it@t{n:03d}.example"
reply_to = "admin@t{n:03d}.example"
[tenant.api]
url = "{api}"
token_file = "api.token"
"""
            for n in range(tenants)
        )
    )
    return drops


def config(folder: Path, instance: str | None, database: str | None) -> Path:
    """An instance's configuration: the shared tenants, its own name."""
    shared = ""
    if database is not None:
        secret = folder / "db.pass"
        secret.write_text(PASSWORD + "\n")
        secret.chmod(0o600)
        shared = (
            f'database = "{database}"\ndatabase_password_file = "db.pass"\n'
            f'instance = "{instance}"\nlease_timeout = "20s"\n'
        )
    path = folder / f"{instance or 'alone'}.toml"
    path.write_text(f"""
include = ["tenants.toml"]
[service]
state_dir = "state"
batch_window = "1s"
settle_time = 0.5
rescan_interval = 10
heartbeat_interval = 3600
observer = "polling"
{shared}
""")
    return path


def start(folder: Path, path: Path) -> subprocess.Popen[bytes]:
    """Start ``watcher run`` with the configuration at ``path``; its log beside it."""
    with path.with_suffix(".log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "watcher", "run", "--config", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )


def wait_for(check: object, what: str, timeout: float = 3600.0) -> None:
    """Poll ``check`` every 0.2 s until it holds."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def started(path: Path) -> bool:
    """Whether the instance logged service.started."""
    log = path.with_suffix(".log")
    return log.exists() and '"service.started"' in log.read_text()


def owned(path: Path) -> int:
    """How many tenants the instance runs, from its own log."""
    count = 0
    for line in path.with_suffix(".log").read_text().splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event["event"] == "service.started":
            count = event["owned"]
        elif event["event"] == "tenant.taken_over":
            count += 1
        elif event["event"] == "lease.released":
            count -= 1
    return count


def archived(drops: list[Path]) -> int:
    """How many drop folders have their file in .bak."""
    return sum(1 for d in drops if any((d / ".bak").glob("users.*.csv")))


def run(
    folder: Path,
    *,
    tenants: int,
    rows: int,
    api: str,
    instances: list[str | None],
    database: str | None,
) -> float:
    """Start the instances, spread the tenants, drop every file; seconds to archive them all."""
    drops = write_site(folder, tenants, api)
    paths = [config(folder, name, database) for name in instances]
    processes = []
    try:
        for path in paths:
            processes.append(start(folder, path))
            wait_for(lambda p=path: started(p), "the service to start", 60)
        if len(paths) > 1:
            share = -(-tenants // len(paths))
            wait_for(
                lambda: all(owned(p) <= share for p in paths) and sum(map(owned, paths)) == tenants,
                "the tenants to spread",
                120,
            )
        header = "unique_id,email\n"
        began = time.monotonic()
        for n, drop in enumerate(drops):
            lines = "".join(f"U-{n:03d}-{i:06d},u{i}@t{n:03d}.example\n" for i in range(rows))
            (drop / "users.csv").write_text(header + lines)
        wait_for(lambda: archived(drops) == tenants, "every file to be archived")
        return time.monotonic() - began
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)


def statements(cluster: Cluster) -> tuple[int, int]:
    """Statements run and transactions committed in the database so far."""
    with cluster.admin() as db:
        calls = db.execute("SELECT COALESCE(SUM(calls), 0) FROM pg_stat_statements").fetchone()
        commits = db.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert calls is not None
    assert commits is not None
    return int(str(calls[0])), int(str(commits[0]))


def main() -> None:
    """Run the three set-ups on the same tenants and files; print times, ratios and costs."""
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--tenants", type=int, default=200)
    arguments.add_argument("--rows", type=int, default=2000)
    arguments.add_argument("--latency", type=float, default=0.02)
    args = arguments.parse_args()
    binaries = bin_dir()
    if binaries is None:
        raise SystemExit("PostgreSQL's server (initdb, pg_ctl) is not installed")
    users = args.tenants * args.rows
    print(
        f"{args.tenants} tenants x {args.rows:,} rows = {users:,} users, "
        f"API latency {args.latency * 1000:g} ms, {os.cpu_count()} CPUs",
        flush=True,
    )
    api_process, api = server(args.latency, 1e9)
    cluster = Cluster(binaries, "shared_preload_libraries = 'pg_stat_statements'")
    try:
        with cluster.admin() as db:
            db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        times: dict[str, float] = {}
        costs: dict[str, tuple[int, int]] = {}
        runs: list[tuple[str, list[str | None], str | None]] = [
            ("SQLite, one instance", [None], None),
            ("PostgreSQL, one instance", ["a"], cluster.fresh().url),
            ("PostgreSQL, two instances", ["a", "b"], cluster.fresh().url),
        ]
        for label, instances, database in runs:
            before = statements(cluster)
            with tempfile.TemporaryDirectory(prefix="uiw-bench-hosts-") as folder:
                took = run(
                    Path(folder),
                    tenants=args.tenants,
                    rows=args.rows,
                    api=api,
                    instances=instances,
                    database=database,
                )
            after = statements(cluster)
            times[label] = took
            costs[label] = (after[0] - before[0], after[1] - before[1])
            print(f"  {label:<28} {took:8.1f} s  {users / took:8,.0f} users/s", flush=True)
        alone, one, two = times.values()
        print(f"PostgreSQL / SQLite, one instance: {one / alone:.2f} (target <= {TARGET_POSTGRES})")
        print(f"two instances / one, PostgreSQL:   {two / one:.2f} (below 1: the second adds)")
        for label in list(times)[1:]:
            calls, commits = costs[label]
            print(
                f"  {label}: {calls / args.tenants:,.0f} statements and "
                f"{commits / args.tenants:,.0f} transactions per batch "
                f"({calls / users:.2f} statements per user)"
            )
    finally:
        api_process.terminate()
        cluster.close()


if __name__ == "__main__":
    main()
