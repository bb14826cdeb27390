"""Reading the Push API's answers: imported, refused, worth retrying, or a bad token.

The API's response format is not public, so a 2xx is a success unless its
JSON body says otherwise (``"success": false``, or an ``error`` or ``errors``
member with something in it). 401 and 403 mean the tenant's token is wrong;
408, 425, 429 and 5xx are worth retrying (after any ``Retry-After``); any
other answer refuses that one user, with the API's own words kept short. Pure:
a status, headers and a body in, a :class:`Verdict` out.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Verdict", "classify", "retry_after"]

_MESSAGE_LIMIT = 300
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What a response means for its user."""

    kind: Literal["imported", "rejected", "transient", "auth"]
    status: int | None = None
    message: str | None = None
    retry_after: float | None = None


def classify(
    status: int,
    headers: Mapping[str, str],
    body: str,
    now: Callable[[], dt.datetime],
) -> Verdict:
    """Read one response of the Push API.

    The API's response format is not public, so a 2xx is a success unless its
    JSON body says otherwise (``"success": false``, or an ``error`` or
    ``errors`` member with something in it). ``now`` tells the time, for a
    ``Retry-After`` given as an HTTP date.
    """
    if 200 <= status < 300:  # noqa: PLR2004 - the 2xx range
        document = _json(body)
        if isinstance(document, dict) and (
            document.get("success") is False or document.get("error") or document.get("errors")
        ):
            return Verdict(kind="rejected", status=status, message=_message(document, body))
        return Verdict(kind="imported", status=status)
    if status in (401, 403):
        return Verdict(kind="auth", status=status, message=_message(_json(body), body))
    if status in _TRANSIENT_STATUSES or status >= 500:  # noqa: PLR2004 - server errors
        return Verdict(
            kind="transient",
            status=status,
            retry_after=retry_after(headers.get("retry-after"), now),
        )
    return Verdict(kind="rejected", status=status, message=_message(_json(body), body))


def retry_after(value: str | None, now: Callable[[], dt.datetime]) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now()).total_seconds())


def _json(body: str) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _message(document: object, body: str) -> str:
    """The API's own words about a refusal, short and on one line."""
    found: object = None
    if isinstance(document, dict):
        for key in ("message", "error", "errors", "detail"):
            if document.get(key):
                found = document[key]
                break
    if found is None:
        found = body
    if isinstance(found, dict):
        found = "; ".join(f"{k}: {v}" for k, v in found.items())
    elif isinstance(found, list):
        found = "; ".join(str(item) for item in found)
    text = " ".join(str(found).split())
    if not text:
        return "The API refused this user without saying why."
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"
