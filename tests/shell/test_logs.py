"""The service's log: one JSON object per line, a library's warnings included."""

from __future__ import annotations

import io
import json
import logging

import structlog

from watcher.shell import logs


def test_the_pools_warnings_become_one_json_line_each() -> None:
    """The pool of psycopg warns through logging: its first line becomes database.pool."""
    out = io.StringIO()
    logs.configure(stream=out, json=True)
    try:
        logging.getLogger("psycopg.pool").warning(
            "error connecting in 'journal': connection refused\n\tIs the server running?"
        )
        logging.getLogger("psycopg.pool").info("connection added")  # below warning: not shown
    finally:
        structlog.reset_defaults()
    (line,) = out.getvalue().splitlines()
    event = json.loads(line)
    assert (event["event"], event["level"]) == ("database.pool", "warning")
    assert event["detail"] == "error connecting in 'journal': connection refused"
