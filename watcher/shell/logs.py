"""Structured logs: one JSON object per line for the log pipeline.

Configured once, by the command line. Events have stable dotted names
(``batch.completed``, ``import.retry_scheduled``) with key/value fields; the
tenant and batch id are bound with contextvars, so every line of a batch
carries them. When standard output is a terminal the lines are rendered for
people instead. Logs carry counts, row numbers, codes and file names, never a
value from a customer's file: the failure report is the only place for those.
``deploy/EVENTS.md`` lists every event.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from watcher.core.names import shown

if TYPE_CHECKING:
    from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

__all__ = ["bind", "configure", "get_logger", "unbind"]

_SECRET_KEYS = frozenset({"token", "apitoken", "password", "secret", "authorization"})


def _drop_secrets(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Remove any field named like a secret, whatever put it there."""
    for key in [k for k in event if k.lower() in _SECRET_KEYS]:
        event[key] = "[removed]"
    return event


def _escape_names(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Show text fields as :func:`watcher.core.names.shown` does.

    A file name can hold a newline (a forged log line in a console) or bytes
    that are not UTF-8 (which no JSON encoder can write).
    """
    for key, value in event.items():
        if isinstance(value, str) and not value.isprintable():
            event[key] = shown(value)
    return event


def configure(
    *, stream: TextIO | None = None, json: bool | None = None, level: str = "info"
) -> None:
    """Set up structlog for this process.

    Args:
        stream: where lines go (standard output by default).
        json: JSON lines, or readable console lines; by default JSON unless
            the stream is a terminal.
        level: the lowest level written.
    """
    out = stream or sys.stdout
    as_json = json if json is not None else not out.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            _drop_secrets,
            _escape_names,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # psycopg's pool speaks through the standard library's logging (to stderr,
    # unstructured): its warnings become events of their own, one JSON line each.
    library = logging.getLogger("psycopg")
    library.handlers = [_Forward()]
    library.propagate = False
    library.setLevel(logging.WARNING)


class _Forward(logging.Handler):
    """A library's warnings, as ``database.pool`` events."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger().warning("database.pool", detail=record.getMessage().splitlines()[0])


def get_logger() -> FilteringBoundLogger:
    """The package's logger."""
    logger: FilteringBoundLogger = structlog.get_logger("watcher")
    return logger


def bind(**values: str) -> None:
    """Attach fields (tenant, batch id) to every event of this context."""
    structlog.contextvars.bind_contextvars(**values)


def unbind(*keys: str) -> None:
    """Detach fields bound with :func:`bind`."""
    structlog.contextvars.unbind_contextvars(*keys)
