"""What reading an upload gives: a table of text, or the reason it could not be read.

Shared by the CSV reader (:mod:`watcher.core.reading`) and the workbook
reader (:mod:`watcher.core.sheets`), so that validation never asks which
one read a file.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watcher.core.codes import Code

__all__ = ["Table", "Unreadable", "column", "marked"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A CSV file (or a workbook's sheet) read into strings.

    ``frame`` has one String column per header cell, named ``c0``, ``c1``, ...
    in file order, and one row per data record (blank lines included, so row
    ``i`` is spreadsheet row ``i + 2``). ``ragged`` lists the records whose
    field count breaks the header's: fewer fields, or values beyond the last
    column (extra fields that are all empty are harmless and not listed).
    ``blank`` marks the records with no value at all, which are skipped.
    """

    headers: tuple[str, ...]
    frame: pl.DataFrame
    encoding: str
    ragged: pl.DataFrame
    blank: pl.Series
    notes: tuple[str, ...] = ()
    # The row a spreadsheet shows the first record in: the one after the header.
    first_row: int = 2

    @property
    def width(self) -> int:
        """How many columns the header names."""
        return len(self.headers)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Unreadable:
    """A file that cannot be read as a table, with a reason a customer can act on."""

    code: Code
    message: str
    encoding: str | None = None


def column(index: int) -> str:
    """The frame's name for the column at ``index``."""
    return f"c{index}"


def marked(height: int, rows: Sequence[int] | pl.Series) -> pl.Series:
    """A mask of ``height`` rows, true at the given ones.

    Filtering a frame by it, rather than gathering the rows, keeps a frame
    read in chunks as it is: a gather joins every chunk first, which on a
    million rows costs more than the checks that follow.
    """
    return pl.repeat(value=False, n=height, eager=True, dtype=pl.Boolean).scatter(rows, values=True)
