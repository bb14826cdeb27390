"""Reading untrusted bytes as CSV: every malformed case, and the two paths agreeing."""

from __future__ import annotations

import codecs
import csv
import io
from typing import TYPE_CHECKING, Literal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import table_of, unreadable
from watcher.core.codes import Code
from watcher.core.reading import _count_lines, _Reader, read_table
from watcher.core.tables import Table, Unreadable

if TYPE_CHECKING:
    from pathlib import Path


def rows_of(table: Table) -> list[tuple[str | None, ...]]:
    """The table's values with empty and missing cells both shown as ''."""
    return [tuple(v or "" for v in row) for row in table.frame.rows()]


def ragged_of(table: Table) -> list[tuple[int, int]]:
    """The ragged records as (record, field count) pairs."""
    return list(table.ragged.iter_rows())


def test_plain_utf8_is_read_as_strings() -> None:
    """A simple file gives its header and values, all as text."""
    table = table_of(b"a,b\n1,2\n3,4\n")
    assert (table.headers, rows_of(table), table.encoding) == (
        ("a", "b"),
        [("1", "2"), ("3", "4")],
        "utf-8",
    )


def test_a_utf8_bom_is_removed_and_reported() -> None:
    """The BOM does not stick to the first header."""
    table = table_of(codecs.BOM_UTF8 + b"email,b\n1,2\n")
    assert (table.headers, table.encoding) == (("email", "b"), "utf-8-sig")


def test_windows_1252_in_the_data_falls_back_and_is_reported() -> None:
    """A cp1252 byte deep in the data makes the whole file cp1252, decoded right."""
    table = table_of(b"name,city\n" + b"a,b\n" * 5000 + "Zoë,Montréal\n".encode("cp1252"))
    assert table.encoding == "windows-1252"
    assert rows_of(table)[-1] == ("Zoë", "Montréal")


def test_windows_1252_in_the_header_is_not_mangled() -> None:
    """A cp1252 byte in the header row gives the right character, not U+FFFD."""
    table = table_of("Prénom,Nom\nA,B\n".encode("cp1252"))
    assert (table.headers, table.encoding) == (("Prénom", "Nom"), "windows-1252")


def test_bytes_that_no_encoding_explains_are_refused() -> None:
    """Bytes invalid in UTF-8 and undefined in cp1252 give an encoding failure."""
    result = unreadable(b"a,b\n\x81\x8d,\x90\n")
    assert result.code is Code.FILE_ENCODING


def test_crlf_line_endings_are_read() -> None:
    """Windows line endings leave no carriage returns in the values."""
    table = table_of(b"a,b\r\n1,2\r\n3,4\r\n")
    assert rows_of(table) == [("1", "2"), ("3", "4")]
    assert ragged_of(table) == []


def test_cr_only_line_endings_are_converted_and_noted() -> None:
    """Excel for Mac's bare CR endings are read as line breaks."""
    table = table_of(b"a,b\r1,2\r3,4\r")
    assert rows_of(table) == [("1", "2"), ("3", "4")]
    assert table.notes == (
        "line endings were bare CR (old Mac style) and were read as line breaks",
    )


def test_quoted_commas_quotes_and_line_breaks_are_values() -> None:
    """Quoting keeps commas, doubled quotes and line breaks inside one value."""
    table = table_of(b'a,b,c\n1,"x, y",2\n3,"say ""hi""",4\n5,"two\nlines",6\n7,8,9\n')
    assert rows_of(table) == [
        ("1", "x, y", "2"),
        ("3", 'say "hi"', "4"),
        ("5", "two\nlines", "6"),
        ("7", "8", "9"),
    ]
    assert ragged_of(table) == []


def test_short_and_long_rows_are_listed_with_their_counts() -> None:
    """Rows with too few fields, or values past the last column, are ragged."""
    table = table_of(b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    assert ragged_of(table) == [(1, 2), (2, 4)]


def test_trailing_empty_fields_beyond_the_header_are_harmless() -> None:
    """A trailing comma adds an empty field, which loses nothing."""
    table = table_of(b"a,b\n1,2,\n3,4,,\n")
    assert ragged_of(table) == []


def test_empty_trailing_cells_are_not_mistaken_for_short_rows() -> None:
    """'1,,' has three fields even though its last two are empty."""
    table = table_of(b"a,b,c\n1,,\n2,3,\n")
    assert ragged_of(table) == []


def test_short_rows_inside_quoted_files_are_found() -> None:
    """Field counts stay exact on lines that hold quoted values."""
    table = table_of(b'a,b,c\n"1","x,y","2"\n"3","4"\n"5","""q""",6,7\n')
    assert ragged_of(table) == [(1, 2), (2, 4)]


def test_a_multi_line_record_counts_once() -> None:
    """A record spanning lines is one row, and its field count is exact."""
    table = table_of(b'a,b,c\n1,"x\ny\nz",2\n3,"p\nq"\n4,5,6\n')
    assert table.frame.height == 3
    assert ragged_of(table) == [(1, 2)]


def test_blank_lines_are_rows_marked_blank() -> None:
    """A blank line keeps its place in the numbering but is marked blank."""
    table = table_of(b"a,b\n1,2\n\n,\n3,4\n")
    assert table.blank.to_list() == [False, True, True, False]
    assert ragged_of(table) == [(1, 1)]


def test_a_long_row_with_values_only_past_the_header_is_not_blank() -> None:
    """Values beyond the last column still make a row non-blank."""
    table = table_of(b"a,b\n,,x\n")
    assert table.blank.to_list() == [False]
    assert ragged_of(table) == [(0, 3)]


def test_an_empty_file_is_refused() -> None:
    """Zero bytes is a file-level failure."""
    assert unreadable(b"") == Unreadable(code=Code.FILE_EMPTY, message="The file is empty.")


def test_a_file_of_blank_lines_has_no_header() -> None:
    """A first line with nothing on it is reported as a missing header row."""
    assert unreadable(b"\n\n").code is Code.HEADER_MISSING_ROW


def test_a_header_only_file_has_zero_rows() -> None:
    """A header without data reads as an empty table, with or without a newline."""
    for data in (b"a,b\n", b"a,b"):
        table = table_of(data)
        assert (table.headers, table.frame.height) == (("a", "b"), 0)


def test_a_spreadsheet_saved_as_csv_is_refused_by_name() -> None:
    """An xlsx file gets a message saying what it is and what to do."""
    result = unreadable(b"PK\x03\x04" + bytes(200))
    assert result.code is Code.FILE_BINARY
    assert "Excel workbook (.xlsx)" in result.message
    assert "CSV UTF-8" in result.message


def test_nul_bytes_past_the_first_block_are_refused_with_a_line() -> None:
    """A NUL byte far into the file fails it and names the line."""
    data = b"a,b\n" + b"1,2\n" * 40_000 + b"3,\x004\n"
    result = unreadable(data)
    assert result.code is Code.FILE_BINARY
    assert "line 40002" in result.message


@pytest.mark.parametrize(
    ("tail", "line"),
    [
        (b'"x,y",\x00\n', 40003),
        (b'5,"\x00"\n', 40003),
        (b"5,6\n\x00,7\n", 40004),
    ],
)
def test_the_first_nul_is_named_among_quoted_lines(tail: bytes, line: int) -> None:
    """Lines holding quotes do not shift the line a NUL byte is reported on."""
    data = b"a,b\n" + b'1,"2"\n' * 40_000 + b'"3,3",4\n' + tail + b"\x00,\x00\n"
    result = unreadable(data)
    assert result.code is Code.FILE_BINARY
    assert f"line {line} " in result.message


@pytest.mark.parametrize(
    ("tail", "line"),
    [
        (b'"3","\x00"\n', 40002),
        (b'"3","4"\n"5",\x00\n', 40003),
        (b'"3","4\n\x00"\n', 40003),
    ],
)
def test_a_nul_is_found_in_a_file_that_quotes_every_value(tail: bytes, line: int) -> None:
    """Lines of the simple quoted shape are read without a closer look, unless they hold NUL."""
    data = b'"a","b"\n' + b'"1","2"\n' * 40_000 + tail
    result = unreadable(data)
    assert result.code is Code.FILE_BINARY
    assert f"line {line} " in result.message


def test_utf16_is_transcoded() -> None:
    """Excel's 'Unicode text' in UTF-16 reads as the same table."""
    for data in (
        codecs.BOM_UTF16_LE + "a,b\n1,é\n".encode("utf-16-le"),
        "a,b\n1,é\n".encode("utf-16-be"),
    ):
        table = table_of(data)
        assert (rows_of(table), table.encoding) == ([("1", "é")], "utf-16")


def test_an_unclosed_quote_names_the_line_it_opens_on() -> None:
    """A quote never closed fails the file and points at where it starts."""
    result = unreadable(b'a,b\n1,2\n3,"open\n4,5\n6,7\n')
    assert result == Unreadable(
        code=Code.CSV_MALFORMED,
        message=(
            'A quoted value that starts on line 3 is never closed: a " is missing, so '
            "the rest of the file would be read as one value."
        ),
        encoding="utf-8",
    )


def test_text_after_a_closing_quote_names_the_line() -> None:
    """'"ab"c' is malformed, and the message says how to write a quote."""
    result = unreadable(b'a,b\n1,2\n3,"ab"c\n')
    assert result.code is Code.CSV_MALFORMED
    assert result.message.startswith("Line 3: text follows the closing quote")


@pytest.mark.parametrize(
    ("body", "line"),
    [
        (b'1,"opens\nmid "x" mid\nends",2\n', 20003),  # a bare quote inside the value
        (b'1,"opens\nmid\nends"x,2\n', 20004),  # text after the closing quote
        (b'1,"a"b"\nc,2\n', 20002),  # text after a closing quote, then an opening one
    ],
)
def test_broken_quoting_in_a_value_spanning_lines_is_malformed(body: bytes, line: int) -> None:
    """Each line of a value spanning lines must fit its place in the value."""
    data = b"a,b\n" + b"3,4\n" * 20_000 + body
    result = unreadable(data)
    assert result.code is Code.CSV_MALFORMED
    assert result.message.startswith(f"Line {line}: text follows the closing quote")


def test_parser_messages_never_leak_other_rows() -> None:
    """The failure message holds no data from the file."""
    result = unreadable(b'a,b\nsecret-one,2\n3,"open\nsecret-two,5\n')
    assert "secret" not in result.message


def test_a_quote_inside_an_unquoted_value_is_kept() -> None:
    """5'10" style values, which polars refuses, are read as written."""
    table = table_of(b"a,b\n1,5'10\"\n2,3\n")
    assert rows_of(table) == [("1", "5'10\""), ("2", "3")]


def test_a_header_longer_than_the_first_block_is_refused() -> None:
    """No header row is 64 KiB long; such a file is not a CSV."""
    result = unreadable(b"a" * 70_000 + b"\n1\n")
    assert result.code is Code.CSV_MALFORMED
    assert "longer than 64 KiB" in result.message


def test_a_quoted_header_may_span_lines() -> None:
    """A header cell with a line break is one cell; data starts after it."""
    table = table_of(b'"first\nname",b\n1,2\n')
    assert (table.headers, rows_of(table)) == (("first\nname", "b"), [("1", "2")])


def test_a_path_and_its_bytes_read_the_same(tmp_path: Path) -> None:
    """Reading from disk and from memory give one table."""
    data = b'a,b\n1,"x\ny"\n2\n'
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    from_path, from_bytes = table_of(path.read_bytes()), read_table(path)
    assert isinstance(from_bytes, Table)
    assert rows_of(from_path) == rows_of(from_bytes)
    assert ragged_of(from_path) == ragged_of(from_bytes)


# Lone CRs are left out on purpose: the csv module ends a line at one and
# polars does not, and read_table converts files whose only breaks are CRs.
_PIECES = st.sampled_from(
    [
        "a",
        "bc",
        "",
        " ",
        ",",
        ",,,",
        '"',
        '""',
        'a""b',
        '"\n',
        "\n",
        "\n\n",
        "\r\n",
        "é",
        "x,y",
        "'",
    ]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_the_fast_path_agrees_with_the_csv_module(body: str) -> None:
    """Where polars reads a file, its values, counts and blanks match the csv module's."""
    data = ("h1,h2,h3\n" + body).encode()
    read = read_table(data)
    if not isinstance(read, Table):
        return
    reader = _Reader(data, "utf-8", ())
    slow = reader.read_slowly(list(read.headers))
    for fast in (read, *(reader.read_fast(list(read.headers), 1, quoted=q) for q in (False, True))):
        if fast is None:
            continue
        assert isinstance(fast, Table)
        assert isinstance(slow, Table)
        assert rows_of(fast) == rows_of(slow)
        assert ragged_of(fast) == ragged_of(slow)
        assert fast.blank.to_list() == slow.blank.to_list()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_reader(data: bytes) -> None:
    """Any bytes give a table or a reason, never an exception."""
    result = read_table(data)
    assert isinstance(result, Table | Unreadable)
    if isinstance(result, Table):
        assert result.frame.width == len(result.headers)
        assert result.blank.len() == result.frame.height
        assert all(c.dtype == pl.String for c in result.frame.iter_columns())


def test_a_file_with_more_rows_than_allowed_is_refused_after_counting() -> None:
    """max_rows lines after the header are read; one more refuses the file."""
    data = b"a,b\n" + b"1,2\n" * 10
    assert isinstance(read_table(data, max_rows=10), Table)
    refused = read_table(data + b"3,4", max_rows=10)
    assert isinstance(refused, Unreadable)
    assert (refused.code, refused.message) == (
        Code.FILE_TOO_MANY_ROWS,
        (
            "The file has more than 10 rows, the most one file may hold; split it into smaller "
            "files and upload them one by one."
        ),
    )


@pytest.mark.parametrize(
    ("header", "row", "last"),
    [
        (b"a,b\n", b"1,2\n", b"3,4"),  # the plain line pass counts
        (b'"a","b"\n', b'"1","2"\n', b'"3","4"\n'),  # the quoted line pass counts
        (b"a,b\r\n", b'1,"x""y"\r\n', b'3,4"\r\n'),  # a stray quote: the exact path's count
        (b"a,b\n", b"1,\xe9\n", b"3,4\n"),  # Windows-1252: counted before transcoding
        (b"a,b\r", b"1,2\r", b"3,4\r"),  # bare CR: counted before the copy
    ],
)
def test_every_path_refuses_one_row_too_many(
    header: bytes, row: bytes, last: bytes, tmp_path: Path
) -> None:
    """Whichever way a file is read, max_rows rows pass and one more is refused."""
    path = tmp_path / "users.csv"
    for rows, expected in ((10, Table), (11, Unreadable)):
        data = header + row * (rows - 1) + last
        path.write_bytes(data)
        for source in (data, path):
            result = read_table(source, max_rows=10)
            assert isinstance(result, expected), (rows, result)
            if isinstance(result, Unreadable):
                assert result.code is Code.FILE_TOO_MANY_ROWS


def test_a_header_spanning_lines_leaves_room_for_every_row() -> None:
    """The rows are counted, not the header's lines: max_rows rows pass under a two-line header."""
    data = b'"first\nname",b\n' + b"1,2\n" * 10
    assert isinstance(read_table(data, max_rows=10), Table)
    assert isinstance(read_table(data + b"3,4\n", max_rows=10), Unreadable)


def test_lines_are_counted_with_any_line_ending(tmp_path: Path) -> None:
    """LF, CRLF and bare CR each count a line; a last line without an ending counts too."""
    assert [_count_lines(b"a\nb\n"), _count_lines(b"a\r\nb"), _count_lines(b"a\rb\rc\r")] == [
        2,
        2,
        3,
    ]
    path = tmp_path / "x.csv"
    path.write_bytes(b"h\n" + b"r\n" * 3 + b"last")
    assert _count_lines(path) == 5
    counted = []
    for data in (b"h\r\n" + b"r\r\n" * 3, b"h\r" + b"r\r" * 3 + b"last", b'h\n"a\nb"\n', b""):
        path.write_bytes(data)
        counted.append(_count_lines(path))
    # CRLF; bare CR (counted in small reads); a value spanning lines counts each; empty.
    assert counted == [4, 5, 3, 0]


_TEXT = st.lists(st.sampled_from([*'ab é,"\n', "\r\n", "xyz"]), max_size=6).map("".join)


@st.composite
def well_formed_files(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    """A header and records written by the rules: short, long, exact, blank, quoted, multi-line.

    Also says whether a value spans lines (the fast path may leave those to the slow one).
    """
    width = draw(st.integers(min_value=1, max_value=5))
    quoting: Literal[0, 1] = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=quoting, lineterminator=ending)
    writer.writerow([f"h{i}" for i in range(width)])
    spanning = False
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        count = draw(
            st.one_of(
                st.just(width),
                st.integers(min_value=1, max_value=width),
                st.integers(min_value=width, max_value=width + 3),
            )
        )
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            buffer.write(ending)  # a blank line
            continue
        values = [draw(_TEXT) for _ in range(count)]
        spanning = spanning or any("\n" in v for v in values)
        writer.writerow(values)
    return buffer.getvalue().encode(), width, spanning


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(well_formed_files())
def test_the_fast_path_reads_well_formed_files_as_the_slow_path_does(
    file: tuple[bytes, int, bool],
) -> None:
    """Short, long, quoted and multi-line records, compared record by record with the csv module.

    Where no value spans lines the fast path must answer itself; where one
    does it may hand the file to the slow path, but what it answers is exact.
    """
    data, width, spanning = file
    reader = _Reader(data, "utf-8", ())
    headers = [f"h{i}" for i in range(width)]
    slow = reader.read_slowly(headers)
    assert isinstance(slow, Table)
    for quoted in (False, True):  # either way of matching the quoted lines
        fast = reader.read_fast(headers, 1, quoted=quoted)
        if fast is None:
            assert spanning, (
                "the fast path left a file with no value spanning lines to the slow one"
            )
            continue
        assert isinstance(fast, Table)
        assert rows_of(fast) == rows_of(slow)
        assert ragged_of(fast) == ragged_of(slow)
        assert fast.blank.to_list() == slow.blank.to_list()


@pytest.mark.parametrize("start", [b"x^", b"x\x01", b"x\x9c", b"x\xda"])
def test_text_that_starts_like_a_compressed_stream_is_read_as_text(
    start: bytes, tmp_path: Path
) -> None:
    """Polars would inflate a file starting "x^" (a zlib header) and fail: read as the CSV it is."""
    data = start + b"id,email\nU1,a@x.org\nU2,b@x.org\n"
    path = tmp_path / "users.csv"
    path.write_bytes(data)
    for source in (data, path):
        table = read_table(source)
        assert isinstance(table, Table), table
        assert table.headers[1:] == ("email",)
        assert table.frame.height == 2


def test_a_compressed_bomb_named_csv_is_refused_without_being_inflated(tmp_path: Path) -> None:
    """A gzip or zlib stream is binary: refused, and not inflated by the line count first."""
    import gzip  # noqa: PLC0415
    import zlib  # noqa: PLC0415

    body = b"unique_id\n" + b"U1\n" * 50_000_000  # 150 MB of rows, a few hundred KB packed
    for packed in (gzip.compress(body, 9), zlib.compress(body, 9)):
        path = tmp_path / "users.csv"
        path.write_bytes(packed)
        assert _count_lines(path) < 10_000  # the packed bytes' own lines, not the rows
        refused = read_table(path)
        assert isinstance(refused, Unreadable)
        assert refused.code is Code.FILE_BINARY
