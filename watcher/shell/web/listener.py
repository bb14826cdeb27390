"""The service's HTTP listener: Prometheus metrics and the status page, read-only.

Opt-in (``[service] http_listen = "127.0.0.1:9464"``), on loopback unless an
operator says otherwise. ``GET /metrics`` is the Prometheus exposition, ``GET
/`` every tenant at a glance, ``GET /tenants/<name>`` one tenant's page. Only
GET and HEAD are answered: nothing here changes any state. Each request reads
the journal read-only, as ``watcher status`` does; a slow scrape never holds
up the service's loop, which runs in another thread.
"""

from __future__ import annotations

import threading
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING
from urllib.parse import unquote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from watcher.core.pages import overview_page, tenant_page
from watcher.shell.web.detail import tenant_detail
from watcher.shell.web.status import gather

if TYPE_CHECKING:
    from collections.abc import Iterable
    from wsgiref.types import StartResponse, WSGIEnvironment

    from structlog.typing import FilteringBoundLogger

    from watcher.config import Config
    from watcher.shell.statedir import StateDir
    from watcher.shell.web.metrics import Metrics

__all__ = ["Listener", "address", "open_listener"]

# A tuple, copied for each answer: wsgiref adds Content-Length to the list it is given.
_HTML = (("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store"))


def address(listen: str) -> tuple[str, int]:
    """Host and port of ``listen`` (``127.0.0.1:9464``, ``[::1]:9464``)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def open_listener(
    config: Config, state: StateDir, metrics: Metrics | None, *, log: FilteringBoundLogger
) -> Listener | None:
    """Serve the metrics and the page where ``http_listen`` says; a bind that fails is said."""
    listen = config.service.http_listen
    if listen is None or metrics is None:
        return None
    listener = Listener(config, state, metrics, log=log)
    try:
        listener.start(listen)
    except OSError as exc:
        log.error("http.unavailable", address=listen, error=exc.strerror)
        return None
    return listener


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        """Requests are not logged: a scrape every few seconds is not an event."""


class Listener:
    """Serves the metrics and the page in a thread of its own."""

    def __init__(
        self,
        config: Config,
        state: StateDir,
        metrics: Metrics,
        *,
        log: FilteringBoundLogger,
        running: bool = True,
    ) -> None:
        self.config = config
        self.state = state
        self.metrics = metrics
        self.log = log
        self.running = running
        self._metrics_app = make_wsgi_app(metrics.registry)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, listen: str) -> tuple[str, int]:
        """Listen on ``listen``; the address bound (the port chosen when 0 was asked).

        Raises:
            OSError: the address cannot be bound.
        """
        host, port = address(listen)
        server = make_server(host, port, self.app, server_class=_Server, handler_class=_Quiet)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
        self._thread.start()
        bound_host, bound_port = server.server_address[:2]
        host = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
        self.log.info("http.listening", address=f"{host}:{bound_port}")
        return host, int(bound_port)

    def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def app(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application: route, read-only."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b"read-only\n"]
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/":
            page = overview_page(gather(self.config, self.state))
        elif path.startswith("/tenants/"):
            name = unquote(path.removeprefix("/tenants/"))
            if name not in {t.name for t in self.config.tenants}:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"no such tenant\n"]
            page = tenant_page(tenant_detail(self.config, self.state, name), running=self.running)
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        start_response("200 OK", list(_HTML))
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [page.encode()]
