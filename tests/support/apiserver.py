"""A real HTTP server standing in for the User Import API, scripted per request.

It listens on loopback, speaks HTTP/1.1 with keep-alive, records every request
body, and answers as the test's ``respond`` function says: a status, a body,
headers and an optional delay, or a dropped connection.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    import io
    from collections.abc import Callable
    from types import TracebackType


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: Any = dataclasses.field(default_factory=lambda: {"success": True})
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    drip: float = 0.0  # seconds between the body's bytes, as a stalled proxy sends them


def accept_all(_: dict[str, Any], __: int) -> Reply:
    """Answer every request with success."""
    return Reply()


def _write_body(out: io.BufferedIOBase, payload: bytes, drip: float) -> None:
    """Write the body at once, or a byte every ``drip`` seconds until the client gives up."""
    if not drip:
        out.write(payload)
        return
    for byte in payload:
        try:
            out.write(bytes([byte]))
            out.flush()
        except OSError:
            return
        time.sleep(drip)


class ApiServer:
    """The scripted server; use as a context manager."""

    def __init__(
        self, respond: Callable[[dict[str, Any], int], Reply] = accept_all, *, nagle: bool = False
    ) -> None:
        """Serve ``respond``'s answers; ``nagle`` leaves TCP_NODELAY off, as many servers do.

        Without it, an answer's body waits for the client's delayed ACK of its
        headers: about 40 ms on Linux, except on a new connection's first answer.
        """
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        # Each request's method and path, in the order of ``requests``.
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; without this, Nagle and
            # delayed ACKs add 40 ms to every answer but a connection's first.
            disable_nagle_algorithm = not nagle

            def log_message(self, *_: object) -> None:
                return

            def handle(self) -> None:
                try:
                    super().handle()
                except ConnectionError:
                    return  # the client was killed mid-request: nothing more to do

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if len(raw) < length:
                    return  # the client died mid-request: nothing arrived
                try:
                    document = json.loads(raw)
                except ValueError:
                    document = {"_unparsed": raw.decode(errors="replace")}
                with server.lock:
                    server.requests.append(document)
                    server.calls.append((self.command, self.path))
                    count = sum(
                        1
                        for r in server.requests
                        if r.get("unique_id") == document.get("unique_id")
                    )
                reply = server.respond(document, count)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = (
                    reply.body.encode()
                    if isinstance(reply.body, str)
                    else json.dumps(reply.body).encode()
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                _write_body(self.wfile, payload, reply.drip)

            do_DELETE = do_POST  # noqa: N815 - http.server's name for the method

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The push endpoint's address."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}/api/OC_TEST/v1/profiles/push"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def ids(self) -> list[str]:
        """The unique_id of every request received, in order."""
        with self.lock:
            return [str(r.get("unique_id")) for r in self.requests]
