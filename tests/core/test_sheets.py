"""Workbooks read as tables: the sheet chosen, cells as the schema means them, bounds kept.

Workbooks are made here with openpyxl (``.xlsx``), by hand (``.ods``: a zip
of XML), or kept under ``tests/fixtures`` (``users.xls``, written once with
xlwt: nothing maintained writes the old format any more).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import TYPE_CHECKING, Any

import openpyxl
from msoffcrypto.format.ooxml import OOXMLFile

from tests.support import ROOT, failures
from watcher.core.codes import Code
from watcher.core.reading import read_table
from watcher.core.schema_parser import load_schema, shipped_schema_path
from watcher.core.tables import Table, Unreadable
from watcher.core.validation import validate

if TYPE_CHECKING:
    from collections.abc import Sequence

OPSCOM = load_schema(shipped_schema_path())
HEADER: list[Any] = ["unique_id", "first_name", "email", "date_of_birth", "user_type_id"]


def workbook(*sheets: tuple[str, Sequence[Sequence[Any]]], hidden: Sequence[str] = ()) -> bytes:
    """An .xlsx with these sheets (name, rows), as Excel would save it."""
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets:
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
        if name in hidden:
            sheet.sheet_state = "hidden"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def read(data: bytes, **limits: int) -> Table | Unreadable:
    """The workbook read as the service reads it, with the shipped schema."""
    return read_table(data, schema=OPSCOM, **limits)


def test_date_cells_take_the_fields_format_and_numbers_in_text_fields_are_noted() -> None:
    """A date cell validates as a date; an ID typed as a number keeps its text and is noted."""
    data = workbook(
        (
            "Users",
            [
                HEADER,
                ["00123", "Ann", "a@jcu.example", dt.date(2004, 3, 17), 3],
                [123, "Bob", "b@jcu.example", dt.datetime(2013, 9, 8, 14, 30, tzinfo=None), 4.0],  # noqa: DTZ001 - a spreadsheet's cells have no zone
                ["S-3", "Cé", "c@jcu.example", "2001-02-03", 1],
            ],
        )
    )
    table = read(data)
    assert isinstance(table, Table)
    assert table.encoding == "xlsx"
    assert table.frame.rows() == [
        ("00123", "Ann", "a@jcu.example", "2004-03-17", "3"),
        ("123", "Bob", "b@jcu.example", "2013-09-08", "4"),
        ("S-3", "Cé", "c@jcu.example", "2001-02-03", "1"),
    ]
    assert table.notes == (
        "Read from its sheet 'Users'.",
        (
            "Column 'unique_id' holds numbers where text is expected (row 3): if they had "
            "leading zeros, the spreadsheet dropped them. Format the column as Text and type "
            "them again."
        ),
    )
    assert validate(table, OPSCOM).ok


def test_a_number_that_cannot_meet_the_fields_pattern_fails_its_row() -> None:
    """A pattern the typed number cannot meet fails the row, with the spreadsheet's row number."""
    patterned: list[dict[str, Any]] = [
        {"name": "unique_id", "constraints": {"required": True, "pattern": "S-[0-9]+"}},
        {"name": "email", "format": "email"},
    ]
    from tests.support import small_schema  # noqa: PLC0415 - only this test needs it

    schema = small_schema(*patterned, primaryKey="unique_id")
    data = workbook(("Sheet1", [["unique_id", "email"], ["S-1", "a@x.org"], [17, "b@x.org"]]))
    report = validate(read_table(data, schema=schema), schema)
    assert failures(report) == [(3, "unique_id", "pattern")]
    assert any("row 3" in note for note in report.notes)


def test_the_only_visible_sheet_whose_header_matches_is_read() -> None:
    """A hidden sheet and a notes sheet are passed over; the note names the sheet used."""
    data = workbook(
        ("Read me", [["How to fill this in"], ["One user per row"]]),
        ("Old", [HEADER, ["S-9", "Old", "o@jcu.example", "", 1]]),
        ("Users", [HEADER, ["S-1", "Ann", "a@jcu.example", "", 3]]),
        hidden=["Old"],
    )
    table = read(data)
    assert isinstance(table, Table)
    assert table.frame["c0"].to_list() == ["S-1"]
    assert table.notes[0] == "Read from the sheet 'Users'."


def test_several_matching_sheets_are_a_file_error_naming_them() -> None:
    """Two visible sheets of users: not clear which to import, so neither is."""
    rows: list[list[Any]] = [HEADER, ["S-1", "Ann", "a@jcu.example", "", 3]]
    result = read(workbook(("Staff", rows), ("Students", rows)))
    assert isinstance(result, Unreadable)
    assert result.code is Code.FILE_SPREADSHEET
    assert "Several sheets ('Staff', 'Students')" in result.message


def test_with_no_matching_sheet_the_first_visible_ones_header_says_what_to_fix() -> None:
    """The header's own problems, not a vague refusal."""
    data = workbook(("Sheet1", [["unique_id", "phone"], ["S-1", "555"]]), ("Sheet2", [["x"]]))
    report = validate(read(data), OPSCOM)
    assert next(p.code for p in report.file_errors) is Code.HEADER_UNKNOWN


def test_a_workbook_named_csv_is_read_by_its_bytes_and_rows_keep_their_numbers() -> None:
    """Content, not the name, makes it a workbook; row 4 of the sheet is row 4 of the report."""
    data = workbook(
        (
            "Users",
            [
                HEADER,
                ["S-1", "Ann", "a@jcu.example", "", 3],
                [None, None, None, None, None],
                ["S-3", "Cé", "not-an-email", "", 1],
            ],
        )
    )
    report = validate(read(data), OPSCOM)
    assert report.rows_blank == 1
    assert failures(report) == [(4, "email", "invalid_email")]


def test_a_formula_gives_the_value_saved_with_it() -> None:
    """Never evaluated: the cached value Excel wrote is what is read."""
    data = workbook(("Users", [HEADER, ["S-1", "Ann", "a@jcu.example", "", "=1+2"]]))
    # openpyxl writes no cached value; put the one Excel would have saved.
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            content = source.read(entry)
            if entry.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"<f>1+2</f><v /></c>", b"<f>1+2</f><v>3</v></c>")
                assert b"<v>3</v>" in content
            target.writestr(entry, content)
    table = read(out.getvalue())
    assert isinstance(table, Table)
    assert table.frame["c4"].to_list() == ["3"]


def test_an_ods_is_read_like_an_xlsx() -> None:
    """LibreOffice's own format: the same table."""
    cells = "".join(
        "<table:table-row>"
        + "".join(
            f'<table:table-cell office:value-type="string"><text:p>{v}</text:p></table:table-cell>'
            for v in row
        )
        + "</table:table-row>"
        for row in (["unique_id", "email"], ["S-1", "a@jcu.example"])
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Users">{cells}'
        "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as ods:
        ods.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        ods.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        ods.writestr(
            "META-INF/manifest.xml",
            '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
            '"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
            '<manifest:file-entry manifest:full-path="/" manifest:media-type='
            '"application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry '
            'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>',
        )
    table = read(out.getvalue())
    assert isinstance(table, Table), table
    assert (table.encoding, table.headers, table.frame.rows()) == (
        "ods",
        ("unique_id", "email"),
        [("S-1", "a@jcu.example")],
    )


def test_an_old_xls_is_read_with_its_dates_and_numbers() -> None:
    """.xls (BIFF8): a date cell in the field's format, a number ID noted, a bad email failed."""
    data = (ROOT / "tests" / "fixtures" / "users.xls").read_bytes()
    table = read(data)
    assert isinstance(table, Table)
    assert table.encoding == "xls"
    assert table.frame["c3"].to_list() == ["2004-03-17", "2001-01-02"]
    report = validate(table, OPSCOM)
    assert failures(report) == [(3, "email", "invalid_email")]
    assert "row 3" in report.notes[1]


def test_a_workbook_that_unpacks_too_far_is_refused_before_it_is_read() -> None:
    """A 40 MB sheet of padding zipped to kilobytes: too inflated; a cap in all as well."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        bomb.writestr("xl/workbook.xml", "<workbook/>")
        bomb.writestr("xl/worksheets/sheet1.xml", b" " * 40_000_000)
    assert len(out.getvalue()) < 100_000
    result = read(out.getvalue())
    assert isinstance(result, Unreadable)
    assert result.code is Code.FILE_TOO_LARGE
    assert "unpacks to more than" in result.message
    honest = workbook(("Users", [HEADER, *[["S-1", "Ann", "a@jcu.example", "", 3]] * 2000]))
    capped = read(honest, max_expanded=50_000)
    assert isinstance(capped, Unreadable)
    assert capped.code is Code.FILE_TOO_LARGE


def test_macros_passwords_and_cut_uploads_are_refused_with_a_reason() -> None:
    """vbaProject.bin, an EncryptedPackage and half a file: each says what to do."""
    plain = workbook(("Users", [HEADER, ["S-1", "Ann", "a@jcu.example", "", 3]]))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            target.writestr(entry, source.read(entry))
        target.writestr("xl/vbaProject.bin", b"\x00" * 64)
    macros = read(out.getvalue())
    assert isinstance(macros, Unreadable)
    assert (macros.code, "carries macros" in macros.message) == (Code.FILE_SPREADSHEET, True)
    # Encrypted as Excel does with a password: an OLE file holding the encrypted package.
    protected = io.BytesIO()
    OOXMLFile(io.BytesIO(plain)).encrypt("secret", protected)
    locked = read(protected.getvalue())
    assert isinstance(locked, Unreadable)
    assert (locked.code, "protected with a password" in locked.message) == (
        Code.FILE_SPREADSHEET,
        True,
    )
    cut = read(plain[: len(plain) // 2])
    assert isinstance(cut, Unreadable)
    assert cut.code in (Code.FILE_SPREADSHEET, Code.FILE_BINARY)


def test_a_failure_report_saved_as_a_workbook_comes_back_as_a_csv_would() -> None:
    """Our four columns ignored, the apostrophe before a formula-like value removed."""
    data = workbook(
        (
            "failed-users",
            [
                [*HEADER, "import_row", "import_error_code", "import_error_field", "import_error"],
                ["S-1", "'=Ann", "a@jcu.example", "", 3, 2, "invalid_email", "email", "bad"],
            ],
        )
    )
    report = validate(read(data), OPSCOM)
    assert report.ok
    assert report.api_rows()["first_name"].to_list() == ["=Ann"]


def test_hidden_rows_are_read_and_a_merged_cell_holds_its_value_in_its_first_cell() -> None:
    """As documented: a hidden user is still a user; a merged pair leaves the second cell empty."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (
        HEADER,
        ["S-1", "Ann", "a@jcu.example", "", 3],
        ["S-2", "Bob", "b@jcu.example", "", 4],
    ):
        sheet.append(row)
    sheet.row_dimensions[3].hidden = True
    sheet.merge_cells("B2:C2")
    out = io.BytesIO()
    book.save(out)
    table = read(out.getvalue())
    assert isinstance(table, Table)
    assert table.frame.select("c0", "c1", "c2").rows() == [
        ("S-1", "Ann", ""),
        ("S-2", "Bob", "b@jcu.example"),
    ]


def test_a_sheet_whose_header_is_lower_down_keeps_the_sheets_row_numbers() -> None:
    """Header in row 3 (two empty rows above): a bad email in row 5 is reported as row 5."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Users & staff"  # a name the workbook's XML escapes
    for offset, row in enumerate(
        (
            HEADER,
            ["S-1", "Ann", "a@jcu.example", "", 3],
            [17, "Bob", "not-an-email", "", 4],
        )
    ):
        for column, value in enumerate(row, start=1):
            sheet.cell(row=3 + offset, column=column, value=value)
    out = io.BytesIO()
    book.save(out)
    table = read(out.getvalue())
    assert isinstance(table, Table)
    assert table.first_row == 4
    report = validate(table, OPSCOM)
    assert failures(report) == [(5, "email", "invalid_email")]
    assert "(row 5)" in report.notes[1]
    assert report.api_rows()["row"].to_list() == [4]
