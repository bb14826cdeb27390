"""A stand-in transport for the API sink's unit tests: each POST answered by a function.

The handler gets the request's JSON document and gives an :class:`Answer`
(:func:`reply` makes one) or raises :class:`NoAnswerError`, as a broken
connection would. Tests of the real client use :mod:`tests.support.apiserver`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from watcher.shell.targets.engine import Answer

if TYPE_CHECKING:
    from collections.abc import Callable

    import yarl

__all__ = ["FakeApi", "reply"]


def reply(status: int, document: object = None, headers: dict[str, str] | None = None) -> Answer:
    """An answer with a JSON body (none without ``document``); header names lowercased."""
    text = "" if document is None else json.dumps(document)
    return Answer(status, {k.lower(): v for k, v in (headers or {}).items()}, text)


class FakeApi:
    """Answers each POST with ``handler``'s answer; keeps every request's URL and document."""

    def __init__(self, handler: Callable[[dict[str, Any]], Answer]) -> None:
        self.handler = handler
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.methods: list[str] = []

    async def post(self, url: yarl.URL, body: bytes, *, method: str = "POST") -> Answer:
        """The handler's answer to the request (or what it raises)."""
        document = json.loads(body)
        self.seen.append((str(url), document))
        self.methods.append(method)
        return self.handler(document)
