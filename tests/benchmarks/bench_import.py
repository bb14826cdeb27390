"""Benchmark: import throughput against an API that answers after 20 ms.

    uv run python tests/benchmarks/bench_import.py [--users 10000] [--latency 0.02]

A real HTTP server in a separate process answers every push after the
latency. The API sink sends the users at the default concurrency, then a
smaller sample one at a time, in the same run; the script prints users per
second, the share of the ideal ``concurrency / latency`` reached (target at
least 80%) and the ratio to one-at-a-time sending.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
TARGET = 0.8


def serve(latency: float) -> None:
    """Run a lean HTTP/1.1 server until killed, printing its URL first.

    asyncio, one write per answer and keep-alive: the server should cost as
    little CPU as possible, since on one machine it competes with the client
    for the same cores, which a remote API would not.
    """
    body = b'{"success": true}'
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}/api/OC_BENCH/v1/profiles/push", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def rate(url: str, users: int, concurrency: int) -> float:
    """Users per second the API sink reaches at ``concurrency``."""
    import os  # noqa: PLC0415

    import structlog  # noqa: PLC0415

    from watcher.config import ApiConfig, Secret  # noqa: PLC0415
    from watcher.shell.api import ApiSink  # noqa: PLC0415

    os.environ["BENCH_TOKEN"] = "bench"  # noqa: S105 - a stand-in API accepts anything
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sink = ApiSink(
        ApiConfig(url=url, token=Secret(env="BENCH_TOKEN"), concurrency=concurrency),
        log=structlog.get_logger(),
    )
    rows: list[dict[str, str | int | None]] = [
        {"row": i + 2, "unique_id": f"U{i:06d}", "email": f"u{i}@x.org"} for i in range(users)
    ]
    done: list[object] = []
    started = time.perf_counter()
    asyncio.run(sink.push(rows, done.append))
    elapsed = time.perf_counter() - started
    assert len(done) == users
    return users / elapsed


def main() -> int:
    """Start the server, measure both ways, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--serial-users", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.latency)
        return 0
    from watcher.config import ApiConfig  # noqa: PLC0415

    concurrency = ApiConfig(url="http://x", token=None).concurrency  # type: ignore[arg-type]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--latency", str(args.latency)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        rate(url, 200, concurrency)  # warm up connections and code paths
        concurrent = rate(url, args.users, concurrency)
        serial = rate(url, args.serial_users, 1)
    finally:
        server.terminate()
        server.wait()
    ideal = concurrency / args.latency
    print(f"latency {args.latency * 1000:.0f} ms, default concurrency {concurrency}:")
    print(f"  concurrent  {args.users:>6,} users  {concurrent:7.1f} users/s  "
          f"{concurrent / ideal:.0%} of ideal {ideal:.0f}/s (target {TARGET:.0%})")  # fmt: skip
    print(f"  one by one  {args.serial_users:>6,} users  {serial:7.1f} users/s  "
          f"{serial / (1 / args.latency):.0%} of ideal {1 / args.latency:.0f}/s")  # fmt: skip
    print(f"  ratio       {concurrent / serial:.1f}x faster than one at a time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
