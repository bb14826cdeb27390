"""Matching a file's header row to the schema's fields.

Each header cell must be one of a field's ``possibleNames``: exactly, as the
product this replaces does, or ignoring case when the schema says
``"headerMatching": "caseInsensitive"``. Surrounding spaces are ignored either
way, since a spreadsheet shows none. The failure report's own columns are
skipped, so a customer can fix rows in that report and upload it as it is.
"""

from __future__ import annotations

import dataclasses
import difflib

from watcher.core.codes import Code, Problem
from watcher.core.schema import RESERVED_COLUMNS, Schema, header_key

__all__ = ["Column", "HeaderMatch", "match_headers", "spreadsheet_letter"]

_DELIMITERS = ((";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars"))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One column of the file and the field it feeds (None: not imported)."""

    index: int
    header: str
    field: str | None

    @property
    def letter(self) -> str:
        """The spreadsheet's name for this column: A, B, ..., Z, AA, ..."""
        return spreadsheet_letter(self.index)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class HeaderMatch:
    """How a header row maps to the schema, and what is wrong with it."""

    columns: tuple[Column, ...]
    problems: tuple[Problem, ...]
    unnamed: tuple[int, ...] = ()
    ignored: tuple[str, ...] = ()
    report_columns: bool = False

    def imported(self) -> tuple[Column, ...]:
        """The columns that feed a field, in file order."""
        return tuple(c for c in self.columns if c.field is not None)


def spreadsheet_letter(index: int) -> str:
    """Column letters as a spreadsheet shows them for a 0-based ``index``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def match_headers(headers: tuple[str, ...], schema: Schema) -> HeaderMatch:
    """Map each header cell to a field and list what prevents an import."""
    if len(headers) == 1:
        wrong = _wrong_delimiter(headers[0])
        if wrong is not None:
            return HeaderMatch(
                columns=(Column(index=0, header=headers[0], field=None),),
                problems=(wrong,),
            )
    lookup = {
        header_key(name, schema): field.name
        for field in schema.fields
        for name in field.possible_names
    }
    reserved = {name.casefold() for name in RESERVED_COLUMNS}
    columns: list[Column] = []
    problems: list[Problem] = []
    unnamed: list[int] = []
    ignored: list[str] = []
    first_seen: dict[str, Column] = {}
    report_columns = False
    for index, cell in enumerate(headers):
        header = cell.strip()
        field = lookup.get(header_key(header, schema)) if header else None
        column = Column(index=index, header=header, field=field)
        columns.append(column)
        if not header:
            unnamed.append(index)
        elif header.casefold() in reserved:
            report_columns = True
        elif field is None:
            if schema.unknown_columns == "ignore":
                ignored.append(header)
            else:
                problems.append(_unknown(column, schema))
        elif field in first_seen:
            earlier = first_seen[field]
            problems.append(
                Problem(
                    code=Code.HEADER_DUPLICATE,
                    message=(
                        f'Columns {earlier.letter} "{earlier.header}" and {column.letter} '
                        f'"{header}" both name {field}: keep only one of them.'
                    ),
                    field=field,
                )
            )
        else:
            first_seen[field] = column
    problems.extend(
        Problem(
            code=Code.HEADER_REQUIRED,
            message=(
                f"The required column {field.name} is missing. Add a column named "
                f"{_listing(field.possible_names)}."
            ),
            field=field.name,
        )
        for field in schema.fields
        if field.required and field.default is None and field.name not in first_seen
    )
    return HeaderMatch(
        columns=tuple(columns),
        problems=tuple(problems),
        unnamed=tuple(unnamed),
        ignored=tuple(ignored),
        report_columns=report_columns,
    )


def _listing(names: tuple[str, ...]) -> str:
    quoted = [f'"{name}"' for name in names]
    if len(quoted) == 1:
        return quoted[0]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _unknown(column: Column, schema: Schema) -> Problem:
    return Problem(
        code=Code.HEADER_UNKNOWN,
        message=(
            f'Column {column.letter} "{column.header}" is not a column this import '
            f"knows.{_did_you_mean(column.header, schema)}"
        ),
    )


def _did_you_mean(header: str, schema: Schema) -> str:
    """A sentence suggesting the closest accepted header, or an empty string."""
    spellings: dict[str, str] = {}
    for field in schema.fields:
        for name in field.possible_names:
            spellings.setdefault(name.casefold(), name)  # the first spelling is canonical
    folded = header.casefold()
    if folded in spellings:
        return (
            f' Did you mean "{spellings[folded]}"? Headers must match exactly, '
            "including capital letters."
        )
    close = difflib.get_close_matches(folded, list(spellings), n=1, cutoff=0.6)
    if not close:
        return " Check the spelling against the list of accepted column names."
    return f' Did you mean "{spellings[close[0]]}"?'


def _wrong_delimiter(header: str) -> Problem | None:
    for delimiter, name in _DELIMITERS:
        if delimiter in header and "," not in header:
            return Problem(
                code=Code.WRONG_DELIMITER,
                message=(
                    f"The columns are separated by {name}, not commas. Save the file "
                    "from your spreadsheet as 'CSV UTF-8 (comma delimited)' and upload "
                    "it again."
                ),
            )
    return None
