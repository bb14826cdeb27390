"""Benchmark: import throughput, and how the adaptive limit finds an API's capacity.

    uv run python tests/benchmarks/bench_import.py [--users 10000] [--latency 0.02]
        [--capacities 150,600]

A lean HTTP server (``tests.support.leanapi``) in a separate process answers
each push after the latency.
In the same run the API sink sends:

- the users with no capacity limit: users per second against the ideal
  ``max_concurrency / latency`` (target at least 90%), and a smaller sample
  one at a time, for the ratio;
- the users to a server that answers 429 at once beyond ``C`` requests per
  second (a token bucket the client knows nothing of), for each ``C``: the
  rate reached against ``C`` (target at least 90%) and the share of requests
  answered 429 (target at most 2%).

Rows refused with 429 are retried by the sink, so every user is imported in
every run; the server counts what it answered.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.leanapi import server, stats  # noqa: E402 - after the path is set

TARGET_IDEAL = 0.9
TARGET_CAPACITY = 0.9
TARGET_REFUSED = 0.02
TARGET_CPU_MS = 0.15


def push(url: str, users: int, max_concurrency: int) -> tuple[float, tuple[int, int], float]:
    """Users per second the API sink reaches, the range of its limit, its CPU per user (ms)."""
    import os  # noqa: PLC0415

    import structlog  # noqa: PLC0415

    from watcher.config import ApiConfig, Secret  # noqa: PLC0415
    from watcher.shell.targets.api import ApiSink  # noqa: PLC0415

    os.environ["BENCH_TOKEN"] = "bench"  # noqa: S105 - a stand-in for a loopback server
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sink = ApiSink(
        ApiConfig(
            url=url,
            token=Secret(env="BENCH_TOKEN"),
            max_concurrency=max_concurrency,
            max_attempts=50,
            max_retry_time=600.0,
        ),
        log=structlog.get_logger(),
    )
    rows: Iterator[dict[str, str | int | None]] = (
        {"row": i + 2, "unique_id": f"U{i:06d}", "email": f"u{i}@x.org"} for i in range(users)
    )
    done = [0]

    def count(_: object) -> None:
        done[0] += 1

    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(sink.push(rows, count))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert done[0] == users
    return users / elapsed, sink.concurrency(), cpu / users * 1000


def main() -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--serial-users", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--capacities", default="150,600")
    args = parser.parse_args()
    from watcher.config import ApiConfig  # noqa: PLC0415

    most = ApiConfig(url="http://x", token=None).max_concurrency  # type: ignore[arg-type]
    process, url = server(args.latency, 0.0)
    try:
        push(url, 200, most)  # warm up connections and code paths
        free, span, cpu = push(url, args.users, most)
        serial, _, _ = push(url, args.serial_users, 1)
    finally:
        process.terminate()
        process.wait()
    ideal = most / args.latency
    print(f"latency {args.latency * 1000:.0f} ms, max_concurrency {most}, no capacity limit:")
    print(f"  adaptive    {args.users:>6,} users  {free:7.1f} users/s  "
          f"{free / ideal:.0%} of ideal {ideal:.0f}/s (target {TARGET_IDEAL:.0%}), "
          f"limit {span[0]}-{span[1]}")  # fmt: skip
    print(f"  client CPU  {cpu:.3f} ms per POST (target at most {TARGET_CPU_MS} ms)")
    print(f"  one by one  {args.serial_users:>6,} users  {serial:7.1f} users/s")
    print(f"  ratio       {free / serial:.1f}x faster than one at a time")
    for capacity in (float(c) for c in args.capacities.split(",") if c):
        process, url = server(args.latency, capacity)
        try:
            push(url, 200, most)
            stats(url)
            rate, span, _ = push(url, args.users, most)
            counts = stats(url)
        finally:
            process.terminate()
            process.wait()
        share = counts["refused"] / max(1, counts["ok"] + counts["refused"])
        print(f"capacity {capacity:.0f}/s, unknown to the client:")
        print(f"  {rate:7.1f} users/s  {rate / capacity:.0%} of capacity "
              f"(target {TARGET_CAPACITY:.0%}), {counts['refused']:,} of "
              f"{counts['ok'] + counts['refused']:,} requests answered 429 = {share:.1%} "
              f"(target at most {TARGET_REFUSED:.0%}), limit {span[0]}-{span[1]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
