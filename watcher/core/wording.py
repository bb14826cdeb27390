"""Counts in words, the same everywhere a person reads them.

The email, the result files' companions, ``watcher status`` and ``watcher
process`` all say "1 file" and "2,500 rows" the same way. Pure.
"""

from __future__ import annotations

__all__ = ["counted", "plural"]


def plural(noun: str) -> str:
    """The plural of the English nouns these messages use: file, row, user, batch, entry."""
    if noun.endswith(("ch", "sh", "s", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def counted(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless the number is one: ``counted(1, "file")``."""
    return f"{number:,} {noun if number == 1 else plural(noun)}"
