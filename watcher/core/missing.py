"""What a customer is told of a full snapshot's missing users: a few lines and a list of keys.

Pure: counts and keys in, text and bytes out. The list names each missing
user by its key fields (never another value: we keep no other), says what
became of it, and why the API refused a deactivation when it did.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from watcher.core.changes import split_key
from watcher.core.reporting import MISSING_STATES, neutralise

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LIST_NAME", "missing_csv"]

LIST_NAME = "missing-users.csv"


def missing_csv(
    key_fields: Sequence[str], users: Sequence[tuple[str, str, str | None, str | None]]
) -> bytes:
    """The missing users as CSV: their key fields, then what became of each, then why.

    ``users`` are the journal's (key, state, code, message), by key.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*key_fields, "import_status", "import_error"])
    for key, state, _code, message in users:
        values = [neutralise(v) for v in split_key(key)]
        writer.writerow([*values, MISSING_STATES.get(state, state), neutralise(message or "")])
    return "\ufeff".encode() + buffer.getvalue().encode()
