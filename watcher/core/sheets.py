"""Spreadsheets read as the CSV reader reads a file: a table of text, or why not.

It opens the workbook whose bytes it is handed (:mod:`watcher.core.reading`
reads the file once) to read its parts, nothing else.

An ``.xlsx``, ``.ods`` or ``.xls`` upload (known by its bytes, whatever its
name) is read by calamine through fastexcel, polars' own ``read_excel``
engine, every cell as text; formulas give the value the program saved with
them and are never evaluated. What the reader adds to fastexcel:

- **Bounds first.** A workbook is a zip archive (``.xls`` is an OLE file):
  what it declares it expands to, entry by entry and in all, is checked
  before anything is read, and then checked again while each entry is
  inflated, so a small file that unpacks to gigabytes is a file error, not
  an exhausted host (:func:`check_workbook`). A password-protected workbook
  (an OLE file holding an ``EncryptedPackage``) and one with macros
  (``vbaProject.bin``, a ``_VBA_PROJECT`` stream) are refused with a reason.
- **Which sheet.** The only sheet, else the first visible sheet whose header
  row matches the schema (none matching: the first visible sheet, whose
  header's problems then say what to fix); several matching sheets is a
  file error naming them. The sheet used is said in the file's notes.
- **Cells as the schema means them.** A date cell in a date field is written
  in the field's own format (fastexcel gives ``2013-09-08 00:00:00``). A
  number cell in a text field (an ID typed as a number, its leading zeros
  gone) is noted per row: the value is kept as Excel shows it, and a field
  with a pattern or length it cannot meet fails the row as any value would.

Rows are numbered as the sheet numbers them: calamine's range starts at the
first row holding a value (the header), and for an ``.xlsx`` the sheet's own
XML says which row that is (:func:`_header_row`); an ``.ods`` or ``.xls`` is
numbered from its header as row 1. Hidden rows and columns are read like the
others; a merged cell's value is in its first cell, the rest are empty.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
from typing import TYPE_CHECKING, Literal

import polars as pl

from watcher.core.codes import Code
from watcher.core.headers import match_headers
from watcher.core.sniffing import OLE, ZIP
from watcher.core.tables import Table, Unreadable, column

if TYPE_CHECKING:
    from watcher.core.schema import Schema

__all__ = ["Kind", "check_workbook", "kind_of", "read_workbook"]

Kind = Literal["xlsx", "ods", "xls"]

# Unpacked, a workbook is XML: about ten times its zipped size. More than a
# hundred times (Apache POI's own floor for an entry's inflation ratio) is a
# bomb, not a roster; so is more than this in all, whatever the ratio.
_MAX_RATIO = 100
_RATIO_GRACE = 1024 * 1024  # entries smaller than this unpacked are not held to the ratio
_CHUNK = 1024 * 1024
# A number as fastexcel writes a number cell: 123, 12.5, 1e+20.
_NUMBER = r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$"
_DATETIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$"
_NOTED_ROWS = 20
_SAVE_AS = "or save it as 'CSV UTF-8 (comma delimited)' and upload that"


def kind_of(data: bytes) -> Kind | None:
    """Whether an upload is a workbook, and which kind, by its bytes; None when it is not."""
    if data.startswith(OLE):
        return "xls"
    if not data.startswith(ZIP):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
        return "xlsx"
    if "content.xml" in names and "mimetype" in names:
        return "ods"
    return None


def check_workbook(data: bytes, kind: Kind, *, max_expanded: int) -> Unreadable | None:
    """Why the workbook may not be read (protected, macros, a bomb); None when it may."""
    if kind == "xls":
        if "EncryptedPackage".encode("utf-16-le") in data:
            return _refused(
                "This workbook is protected with a password, so it cannot be read. Save a copy "
                f"without the password, {_SAVE_AS}."
            )
        if "_VBA_PROJECT".encode("utf-16-le") in data:
            return _macros()
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _check_zip(archive, max_expanded)
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
        return _refused(
            f"This workbook is damaged or was cut off during the upload ({exc}). Upload it "
            f"again, {_SAVE_AS}."
        )


def _check_zip(archive: zipfile.ZipFile, max_expanded: int) -> Unreadable | None:
    entries = archive.infolist()
    if any(e.filename.lower().endswith("vbaproject.bin") for e in entries):
        return _macros()
    if any(e.flag_bits & 0x1 for e in entries):
        return _refused(
            "This workbook's parts are encrypted, so it cannot be read. Save a copy without "
            f"the password, {_SAVE_AS}."
        )
    declared = sum(e.file_size for e in entries)
    if declared > max_expanded or any(_too_inflated(e.file_size, e.compress_size) for e in entries):
        return _bomb(declared)
    # The sizes are what the archive says; count what inflating really gives.
    total = 0
    for entry in entries:
        inflated = 0
        with archive.open(entry) as part:
            while chunk := part.read(_CHUNK):
                inflated += len(chunk)
                total += len(chunk)
                if total > max_expanded or _too_inflated(inflated, entry.compress_size):
                    return _bomb(total)
    return None


def _too_inflated(size: int, compressed: int) -> bool:
    return size > _RATIO_GRACE and size > _MAX_RATIO * max(compressed, 1)


def _bomb(size: int) -> Unreadable:
    return Unreadable(
        code=Code.FILE_TOO_LARGE,
        message=(
            f"This workbook unpacks to more than {size:,} bytes, far more than a list of users "
            f"needs: it cannot be read safely. Save the users' sheet alone as a new workbook, "
            f"{_SAVE_AS}."
        ),
    )


def _macros() -> Unreadable:
    return _refused(
        "This workbook carries macros, which are never opened here. Save it as an Excel "
        f"Workbook (.xlsx) without macros, {_SAVE_AS}."
    )


def _refused(message: str) -> Unreadable:
    return Unreadable(code=Code.FILE_SPREADSHEET, message=message)


def read_workbook(
    data: bytes, kind: Kind, schema: Schema | None, *, max_rows: int
) -> Table | Unreadable:
    """The sheet of users as a table of text (see the module docstring), or why it cannot be."""
    import fastexcel  # noqa: PLC0415 - only for workbooks

    try:
        reader = fastexcel.read_excel(data)
        chosen = _choose(reader, schema)
        if isinstance(chosen, str):
            return _refused(chosen)
        index, name, many = chosen
        sheet = reader.load_sheet(
            index, header_row=None, dtypes="string", skip_whitespace_tail_rows=True
        ).to_polars()
    except fastexcel.FastExcelError as exc:
        return _refused(
            f"This workbook could not be read ({exc}). Open it and save it again, {_SAVE_AS}."
        )
    if sheet.height == 0:
        return Unreadable(code=Code.FILE_EMPTY, message=f"The sheet '{name}' is empty.")
    if sheet.height - 1 > max_rows:
        return Unreadable(
            code=Code.FILE_TOO_MANY_ROWS,
            message=(
                f"The sheet '{name}' has more than {max_rows:,} rows, the most one file may "
                "hold; split it into smaller files and upload them one by one."
            ),
        )
    headers = tuple(v or "" for v in sheet.row(0))
    frame = sheet.slice(1).rename({c: column(i) for i, c in enumerate(sheet.columns)})
    notes = [f"Read from the sheet '{name}'." if many else f"Read from its sheet '{name}'."]
    header_row = _header_row(data, name) if kind == "xlsx" else None
    first_row = (header_row or 1) + 1
    if schema is not None:
        frame, noted = _as_schema_means(frame, headers, schema, (reader, index, first_row))
        notes += noted
    blank = frame.select(
        pl.all_horizontal(pl.all().is_null() | (pl.all().str.strip_chars() == ""))
    ).to_series()
    return Table(
        headers=headers,
        frame=frame.with_columns(pl.all().fill_null("")),
        encoding=kind,  # what it was read as, where a CSV names its encoding
        ragged=pl.DataFrame(schema={"record": pl.Int64, "fields": pl.Int64}),
        blank=blank,
        notes=tuple(notes),
        first_row=first_row,
    )


def _choose(reader: object, schema: Schema | None) -> tuple[int, str, bool] | str:
    """The sheet to read: (index, name, whether there was a choice), or why none can be."""
    names: list[str] = reader.sheet_names  # type: ignore[attr-defined]
    if len(names) == 1:
        return 0, names[0], False
    fitting = []
    visible = []
    for index, name in enumerate(names):
        head = reader.load_sheet(  # type: ignore[attr-defined]
            index, header_row=None, n_rows=1, dtypes="string"
        )
        if head.visible != "visible" or head.height == 0:
            continue
        visible.append((index, name))
        headers = tuple(v or "" for v in head.to_polars().row(0))
        if schema is None or not match_headers(headers, schema).problems:
            fitting.append((index, name))
    if not visible:
        return (
            "The workbook has no visible sheet with anything in it. Show the users' sheet, "
            f"{_SAVE_AS}."
        )
    if not fitting:  # the first visible one: its header's problems say what to fix
        index, name = visible[0]
        return index, name, True
    if len(fitting) > 1:
        listed = ", ".join(f"'{n}'" for _, n in fitting)
        return (
            f"Several sheets ({listed}) have a header row that matches: it is not clear which "
            f"holds the users. Keep the users on one sheet (delete or hide the others), {_SAVE_AS}."
        )
    index, name = fitting[0]
    return index, name, True


def _as_schema_means(
    frame: pl.DataFrame,
    headers: tuple[str, ...],
    schema: Schema,
    sheet: tuple[object, int, int],
) -> tuple[pl.DataFrame, list[str]]:
    """Date cells in the field's format; number cells in text fields noted, row by row."""
    matched = match_headers(headers, schema)
    dates: dict[str, str] = {}
    texts: dict[str, str] = {}
    for col in matched.imported():
        if col.field is None:
            continue
        field = schema.field(col.field)
        if field.type == "date":
            pattern = "%Y-%m-%d" if field.format == "default" else field.format
            dates[column(col.index)] = pattern
        elif field.type == "string":
            texts[column(col.index)] = col.header
    frame = frame.with_columns(
        pl.when(pl.col(c).str.contains(_DATETIME))
        .then(
            pl.col(c)
            .str.slice(0, 19)
            .str.strptime(pl.Datetime, "%Y-%m-%d %H:%M:%S", strict=False)
            .dt.strftime(pattern)
        )
        .otherwise(pl.col(c))
        .alias(c)
        for c, pattern in dates.items()
    )
    return frame, _number_notes(frame, texts, sheet)


def _number_notes(
    frame: pl.DataFrame, texts: dict[str, str], sheet: tuple[object, int, int]
) -> list[str]:
    """A note per text field holding number cells, naming its first rows.

    ``sheet`` is the reader, the sheet's index and the row of its first record.
    """
    reader, index, first_row = sheet
    suspect = [c for c in texts if frame[c].str.contains(_NUMBER).any()]
    if not suspect:
        return []
    # Read as true/false, a number cell gives a value and a text cell none: the
    # one way fastexcel tells a cell's own type. Only columns that may hold one.
    typed = reader.load_sheet(  # type: ignore[attr-defined]
        index,
        header_row=None,
        dtypes="boolean",
        use_columns=[int(c[1:]) for c in suspect],
        skip_whitespace_tail_rows=True,
    ).to_polars()
    notes = []
    for position, c in enumerate(suspect):
        flags = typed.to_series(position).slice(1, frame.height)
        numbers = flags.is_not_null() & ~frame[c].is_in(["true", "false"])
        rows = (numbers.arg_true() + first_row).to_list()
        if not rows:
            continue
        shown = ", ".join(str(r) for r in rows[:_NOTED_ROWS])
        more = f" and {len(rows) - _NOTED_ROWS:,} more" if len(rows) > _NOTED_ROWS else ""
        where = f"row {shown}" if len(rows) == 1 else f"rows {shown}{more}"
        notes.append(
            f"Column '{texts[c]}' holds numbers where text is expected ({where}): "
            "if they had leading zeros, the spreadsheet dropped them. Format the column as "
            "Text and type them again."
        )
    return notes


# The first part of a sheet's XML looked at for its header row: rows before
# it are empty, and a sheet with this much nothing before its header is
# numbered from its header.
_HEAD_BYTES = 256 * 1024
_ATTRIBUTE = r'\b{name}="([^"]*)"'


def _header_row(data: bytes, name: str) -> int | None:
    """The row an .xlsx sheet's header is in (its first row holding a value); None if unclear."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            part = _sheet_part(archive, name)
            if part is None:
                return None
            with archive.open(part) as sheet:
                head = sheet.read(_HEAD_BYTES)
    except (KeyError, zipfile.BadZipFile, OSError, EOFError):
        return None
    for row in re.finditer(rb"<(?:\w+:)?row\b([^>]*?)(/?)>", head):
        if row.group(2):  # <row r="1"/>: nothing in it
            continue
        closing = re.compile(rb"</(?:\w+:)?row>").search(head, row.end())
        body = head[row.end() : closing.start() if closing else len(head)]
        if re.search(rb"<(?:\w+:)?(?:v|is)\b", body):
            number = re.search(_ATTRIBUTE.format(name="r").encode(), row.group(1))
            return int(number.group(1)) if number else None
    return None


def _sheet_part(archive: zipfile.ZipFile, name: str) -> str | None:
    """The zip entry of the sheet called ``name``, by the workbook and its relationships."""
    workbook = archive.read("xl/workbook.xml").decode("utf-8", "replace")
    relation = None
    for attributes in re.findall(r"<(?:\w+:)?sheet\b([^>]*)>", workbook):
        found = re.search(_ATTRIBUTE.format(name="name"), attributes)
        if found and html.unescape(found.group(1)) == name:
            rid = re.search(r'\b(?:\w+:)?id="([^"]*)"', attributes)
            relation = rid.group(1) if rid else None
            break
    if relation is None:
        return None
    rels = archive.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    for attributes in re.findall(r"<(?:\w+:)?Relationship\b([^>]*)>", rels):
        rid = re.search(_ATTRIBUTE.format(name="Id"), attributes)
        target = re.search(_ATTRIBUTE.format(name="Target"), attributes)
        if rid and target and rid.group(1) == relation:
            path = html.unescape(target.group(1))
            return path.lstrip("/") if path.startswith("/") else f"xl/{path}"
    return None
