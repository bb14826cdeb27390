"""A lean HTTP/1.1 server standing in for the API in benchmarks: fast, and optionally limited.

asyncio, one write per answer and keep-alive: it should cost as little CPU as
possible, since on one machine it competes with the client for the same
cores, which a remote API would not. Each push is answered after a latency;
with a capacity, requests beyond it (a token bucket of a tenth of a second's
worth) are answered 429 at once. ``GET /stats`` answers the counts and resets
them. Run it as ``python -m tests.support.leanapi --latency 0.02
[--capacity 150]``: it prints its URL, then serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

__all__ = ["serve", "server", "stats"]

ROOT = Path(__file__).resolve().parents[2]


class _Bucket:
    """Admits ``capacity`` requests per second, a tenth of a second's worth at once."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.tokens = capacity / 10
        self.at = time.monotonic()

    def admit(self) -> bool:
        if not self.capacity:
            return True
        now = time.monotonic()
        self.tokens = min(self.capacity / 10, self.tokens + (now - self.at) * self.capacity)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _answer(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """One request's head (its body read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return head


def serve(latency: float, capacity: float) -> None:
    """Serve until killed, printing the URL first."""
    accepted = _answer(b"200 OK", b'{"success": true}')
    refused = _answer(b"429 Too Many Requests", b'{"error": "slow down"}')
    counts = {"ok": 0, "refused": 0}
    bucket = _Bucket(capacity)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await _read_request(reader)
                if head.startswith(b"GET /stats"):
                    writer.write(_answer(b"200 OK", json.dumps(counts).encode()))
                    counts.update(ok=0, refused=0)
                elif bucket.admit():
                    counts["ok"] += 1
                    await asyncio.sleep(latency)
                    writer.write(accepted)
                else:
                    counts["refused"] += 1
                    writer.write(refused)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"http://127.0.0.1:{port}/api/OC_BENCH/v1/profiles/push", flush=True)  # noqa: T201 - how the caller learns the URL
        await server.serve_forever()

    asyncio.run(main())


def server(latency: float, capacity: float) -> tuple[subprocess.Popen[str], str]:
    """Start a server process; it and its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.leanapi", "--latency", str(latency),
         "--capacity", str(capacity)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def stats(url: str) -> dict[str, int]:
    """The server's counts since the last look."""
    base = url.split("/api/", 1)[0]
    with urllib.request.urlopen(f"{base}/stats", timeout=10) as answer:  # noqa: S310 - loopback
        counts: dict[str, int] = json.loads(answer.read())
    return counts


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description=__doc__)
    arguments.add_argument("--latency", type=float, default=0.02)
    arguments.add_argument("--capacity", type=float, default=0.0)
    parsed = arguments.parse_args()
    serve(parsed.latency, parsed.capacity)
