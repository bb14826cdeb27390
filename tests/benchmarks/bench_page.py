"""Benchmark: the status page stays fast with 500 tenants and a year of batches.

    uv run python tests/benchmarks/bench_page.py [--tenants 500] [--batches 100000]

A journal is filled as the service would leave it after a year: ``--batches``
finished batches spread over the tenants and the last 365 days, each with a
file, its kept counts, a few failures and a report in the outbox, plus a held
batch and some pending rows. The script times, through the service's own
HTTP listener, the overview page, one tenant's page and a Prometheus scrape
(best of several), and the same against a journal of a hundredth of the
batches measured in the same run, the ratio showing how the page grows with
the history.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import shutil
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402 - after the path is set

from watcher.config import load_config  # noqa: E402
from watcher.core.records import Counts  # noqa: E402
from watcher.shell.journal import Journal  # noqa: E402
from watcher.shell.statedir import StateDir  # noqa: E402
from watcher.shell.web.listener import Listener  # noqa: E402
from watcher.shell.web.metrics import Metrics, read_waiting  # noqa: E402

YEAR = 365 * 86400
CODES = ("invalid_email", "missing_value", "duplicate_key", "invalid_value")


def site(folder: Path, tenants: int) -> Path:
    """A configuration of ``tenants`` tenants, each with its drop folder."""
    lines = [f'[service]\nstate_dir = "{folder / "state"}"\n']
    for n in range(tenants):
        drop = folder / "sftp" / f"t{n:03d}" / "upload"
        drop.mkdir(parents=True)
        lines.append(
            f'[[tenant]]\nname = "t{n:03d}"\ndrop_dir = "{drop}"\n'
            f'schema = "{ROOT / "schema" / "opscom-users.json"}"\n'
            f'failed_import_email = "r@t{n}.example"\nreply_to = "a@t{n}.example"\n'
        )
    config = folder / "watcher.toml"
    config.write_text("\n".join(lines))
    return config


def fill(path: Path, tenants: int, batches: int, seed: int = 7) -> None:
    """A year of finished batches and checks, as the service keeps them, in the journal at ``path``."""
    journal = Journal(path)
    db, rng, now = journal.db, random.Random(seed), time.time()
    batch_rows: list[tuple[object, ...]] = []
    file_rows: list[tuple[object, ...]] = []
    failure_rows: list[tuple[object, ...]] = []
    message_rows: list[tuple[object, ...]] = []
    check_rows: list[tuple[object, ...]] = []
    for _ in range(batches):
        tenant = f"t{rng.randrange(tenants):03d}"
        batch_id, file_id = uuid.uuid4().hex, uuid.uuid4().hex
        created = now - rng.random() * YEAR
        rows = rng.randrange(10, 5000)
        failed = rng.randrange(0, 6)
        unchanged = rng.randrange(0, rows - failed + 1)
        counts = Counts(imported=rows - failed - unchanged, unchanged=unchanged, failed=failed)
        name = f"users-{int(created)}.csv"
        kept = {"files": [name], "counts": dataclasses.asdict(counts)}
        batch_rows.append((batch_id, tenant, "done", created, created + 30, json.dumps(kept)))
        file_rows.append((file_id, batch_id, tenant, name, "archived", created, created + 30))
        failure_rows.extend(
            (file_id, row, "email", rng.choice(CODES), "not usable") for row in range(failed)
        )
        if failed:
            message_rows.append((batch_id, batch_id, tenant, "/dev/null", "sent", created))
        # As many checks as batches, a trial before each real upload.
        check_rows.append((uuid.uuid4().hex, tenant, name, created - 600, rows, failed, None))
    pending_rows: list[tuple[object, ...]] = []
    held: list[tuple[object, ...]] = []
    for n in range(0, tenants, 25):  # every 25th tenant has a batch held with rows pending
        batch_id, file_id = uuid.uuid4().hex, uuid.uuid4().hex
        held.append((batch_id, f"t{n:03d}", "importing", now - 600, "held"))
        file_rows.append((file_id, batch_id, f"t{n:03d}", "held.csv", "claimed", now, now))
        pending_rows.extend((file_id, row, "pending") for row in range(1000))
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO batches (id, tenant, state, created_at, safeguard) VALUES (?, ?, ?, ?, ?)",
        held,
    )
    db.executemany("INSERT INTO rows (file_id, row, state) VALUES (?, ?, ?)", pending_rows)
    db.executemany(
        "INSERT INTO batches (id, tenant, state, created_at, finished_at, counts)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        batch_rows,
    )
    db.executemany(
        "INSERT INTO files (id, batch_id, tenant, name, state, received_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        file_rows,
    )
    db.executemany(
        "INSERT INTO failures (file_id, row, field, code, message) VALUES (?, ?, ?, ?, ?)",
        failure_rows,
    )
    db.executemany(
        "INSERT INTO messages (id, batch_id, tenant, path, state, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        message_rows,
    )
    db.executemany(
        "INSERT INTO checks (id, tenant, name, checked_at, rows, failed, code)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        check_rows,
    )
    db.execute("COMMIT")
    journal.close()


def timed(url: str, runs: int) -> tuple[float, int]:
    """The median of ``runs`` GETs of ``url``, in seconds; and the page's size."""
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as answer:  # noqa: S310 - loopback
            size = len(answer.read())
        times.append(time.perf_counter() - started)
    return statistics.median(times), size


def measure(folder: Path, tenants: int, batches: int, runs: int) -> dict[str, tuple[float, int]]:
    """Fill a journal and time the overview, one tenant's page and a scrape over HTTP."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    config = load_config(site(folder, tenants))
    state = StateDir(config.service.state_dir)
    state.root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fill(state.root / "journal.sqlite", tenants, batches)
    print(f"  {batches:,} batches written in {time.perf_counter() - started:.1f} s", flush=True)
    names = [t.name for t in config.tenants]
    metrics = Metrics(names, lambda: read_waiting(state, dict.fromkeys(names, True)))
    listener = Listener(config, state, metrics, log=structlog.get_logger(), running=False)
    host, port = listener.start("127.0.0.1:0")
    base = f"http://{host}:{port}"
    try:
        return {
            "overview": timed(base + "/", runs),
            "tenant": timed(base + "/tenants/t042", runs),
            "metrics": timed(base + "/metrics", runs),
        }
    finally:
        listener.close()


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=500)
    parser.add_argument("--batches", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    folder = ROOT / ".bench" / "page"
    small = max(args.batches // 100, args.tenants)
    print(f"{args.tenants} tenants, baseline journal of {small:,} batches:")
    base = measure(folder / "small", args.tenants, small, args.runs)
    print(f"{args.tenants} tenants, journal of {args.batches:,} batches:")
    full = measure(folder / "full", args.tenants, args.batches, args.runs)
    print(f"median of {args.runs} requests over HTTP:")
    for page, (seconds, size) in full.items():
        print(
            f"  {page:<9} {seconds * 1000:8.1f} ms ({size / 1024:,.0f} KiB); baseline "
            f"{base[page][0] * 1000:6.1f} ms; ratio {seconds / base[page][0]:5.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
