"""Reading an untrusted CSV file into a table of strings, or saying why not.

The fast path reads values with ``polars.read_csv`` and checks every record's
field count with one streaming pass over the file's lines: polars pads a short
row with the same null it uses for an empty cell and drops extra fields with
``truncate_ragged_lines``, so the count is not in its output. For a line with no
quote character, the line is exactly its values joined by commas, so its byte
length must equal the sum of the parsed values' lengths plus the commas; any
short or long row breaks that equation. Lines with quotes (a minority in real
exports) are parsed one by one with the csv module.

The slow path parses the whole file with the csv module. It runs when polars
refuses the file (an unclosed quote, text after a closing quote, a quote inside
an unquoted value) or when the line walk and polars disagree about where
records begin, and it turns quoting errors into a message with a line number.
Neither path ever shows a parser's own message: polars quotes other rows' data.

This module opens the file it is handed (a path) to read it, and writes nothing.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import io
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from watcher.core.codes import Code
from watcher.core.limits import MAX_EXPANDED, MAX_ROWS
from watcher.core.sniffing import HEAD_SIZE, Sniff, may_be_workbook, sniff, utf8_prefix_ok
from watcher.core.tables import Table, Unreadable, column, marked

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watcher.core.schema import Schema

__all__ = ["read_table"]

_SLOW_CHUNK_ROWS = 100_000
_COUNT_CHUNK = 1024 * 1024
# Lines the fast path may parse one by one (values spanning lines, quotes in
# values, long rows) before the whole file goes to the slow path instead.
_MOST_TEXT_LINES = 20_000
# A line of fields, each quoted by the rules (a quote inside written "") or
# unquoted and holding no quote. The csv module keeps a quote inside an
# unquoted value as text (5'10" stays as written), and so does polars within
# the header's width, but when it skips the values past the last column it
# takes such a quote as opening a quoted value: a line holding one is read by
# the exact path.
_FIELD = r'(?:"(?:[^"]|"")*"|[^",][^,"]*|)'
_WHOLE_LINE = rf"^{_FIELD}(?:,{_FIELD})*$"
# The first, last and inner lines of a quoted value that spans lines.
_OPENING_LINE = rf'^(?:{_FIELD},)*"(?:[^"]|"")*$'
_CLOSING_LINE = rf'^(?:[^"]|"")*"(?:,{_FIELD})*$'
_INSIDE_LINE = r'^(?:[^"]|"")*$'
# A line whose every field is quoted and holds no quote ("a","b,c"): a whole
# record of one field per pair of quotes, with no quote among its values (nor
# a NUL byte, which the closer look reports).
_SIMPLE_LINE = r'^"[^"\x00]*"(?:,"[^"\x00]*")*$'
_SAVE_AS = "Save it from your spreadsheet as 'CSV UTF-8 (comma delimited)' and upload it again."


# polars takes a file that starts as a compressed stream does (zlib, gzip,
# zstd) for one and inflates it, whatever its name: a text file starting
# "x^" fails, a small bomb fills the memory. Such a file is counted and read
# by the exact path; the sniffer refuses the binary ones.
_COMPRESSED = (b"x\x01", b"x^", b"x\x9c", b"x\xda", b"\x1f\x8b", b"(\xb5/\xfd")


def _count_lines(source: Path | bytes) -> int:
    """How many lines ``source`` has (LF, CRLF or bare CR endings).

    For a path, polars counts the line feeds natively (no quote is looked
    at, so a value spanning lines counts each line). A file whose head has
    carriage returns and no line feed is read with bare CR endings, so its
    lines are counted in small reads instead; in any other file a bare CR
    is part of a value, as the reader will take it.
    """
    if isinstance(source, bytes):
        return _count_in(source)
    with source.open("rb") as handle:
        head = handle.read(HEAD_SIZE)
    if not _ends_lines_with_cr(head) and not head.startswith(_COMPRESSED):
        with contextlib.suppress(pl.exceptions.PolarsError):
            return _native_lines(source)
    newlines = returns = 0
    last = b""
    with source.open("rb") as handle:
        while chunk := handle.read(_COUNT_CHUNK):
            newlines += chunk.count(b"\n")
            returns += chunk.count(b"\r")
            last = chunk[-1:]
    return max(newlines, returns) + (bool(last) and last not in (b"\n", b"\r"))


def _ends_lines_with_cr(head: bytes) -> bool:
    """Whether a file's head ends its lines with bare CRs (old Mac style), and never with LF."""
    return b"\r" in head and b"\n" not in head


def _count_in(data: bytes) -> int:
    return max(data.count(b"\n"), data.count(b"\r")) + (not data.endswith((b"\n", b"\r")))


def _native_lines(path: Path) -> int:
    """The lines of ``path`` ended by a line feed (a last line without one counts)."""
    lines = pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        infer_schema=False,
        raise_if_empty=False,
    )
    return int(lines.select(pl.len()).collect().item())


def read_table(
    source: Path | bytes,
    *,
    max_rows: int = MAX_ROWS,
    schema: Schema | None = None,
    max_expanded: int = MAX_EXPANDED,
) -> Table | Unreadable:
    """Read ``source`` (a file path or the file's bytes) as a CSV table, or a workbook's sheet.

    A file of more than ``max_rows`` lines after its header is refused after
    counting them: every row costs memory whatever its size, and a file of
    millions of one-byte rows would cost the service gigabytes to report on.
    A workbook (known by its bytes) is read by :mod:`watcher.core.sheets`:
    ``schema`` picks its sheet, and ``max_expanded`` bounds what it unpacks to.
    """
    if isinstance(source, Path):
        with source.open("rb") as handle:
            start = handle.read(8)
    else:
        start = source[:8]
    if may_be_workbook(start):
        # Imported here: a CSV file, the usual upload, never needs it.
        from watcher.core.sheets import (  # noqa: PLC0415
            check_workbook,
            kind_of,
            read_workbook,
        )

        # Read once: the checks, the sheet's choice and calamine all look at it.
        data = _all_bytes(source)
        kind = kind_of(data)
        if kind is not None:
            refused = check_workbook(data, kind, max_expanded=max_expanded)
            if refused is not None:
                return refused
            return read_workbook(data, kind, schema, max_rows=max_rows)
    return _read(source, max_rows)


def _too_many_rows(max_rows: int) -> Unreadable:
    return Unreadable(
        code=Code.FILE_TOO_MANY_ROWS,
        message=(
            f"The file has more than {max_rows:,} rows, the most one file may hold; "
            "split it into smaller files and upload them one by one."
        ),
    )


def _read(source: Path | bytes, max_rows: int) -> Table | Unreadable:
    """Read a CSV file, counting its lines before any copy of it is made.

    A UTF-8 file is counted by the line pass of the fast path (or just
    before the slow one); a file to be transcoded or rewritten is counted
    first, so a file of millions of tiny rows is never copied.
    """
    if isinstance(source, Path):
        with source.open("rb") as handle:
            head = handle.read(HEAD_SIZE + 1)
    else:
        head = source[: HEAD_SIZE + 1]
    whole = len(head) <= HEAD_SIZE
    head = head[:HEAD_SIZE]
    if not head:
        return Unreadable(code=Code.FILE_EMPTY, message="The file is empty.")
    verdict = sniff(head)
    if verdict.binary is not None:
        return Unreadable(
            code=Code.FILE_BINARY,
            message=f"This is not a CSV file: it looks like {verdict.binary}. {_SAVE_AS}",
        )
    utf8 = verdict.encoding is None and utf8_prefix_ok(head, complete=whole)
    if (not utf8 or _ends_lines_with_cr(head)) and _count_lines(source) > max_rows + 1:
        return _too_many_rows(max_rows)
    notes: list[str] = []
    decoded = _as_utf8(source, verdict, utf8=utf8)
    if isinstance(decoded, Unreadable):
        return decoded
    data, encoding = decoded
    if data is not None:
        head = data[:HEAD_SIZE]
        whole = len(data) <= HEAD_SIZE
    if _ends_lines_with_cr(head):
        data = (data if data is not None else _all_bytes(source)).replace(b"\r", b"\n")
        head = data[:HEAD_SIZE]
        notes.append("line endings were bare CR (old Mac style) and were read as line breaks")
    body: Path | bytes = source if data is None else data
    return _Reader(body, encoding, tuple(notes), max_rows=max_rows).read(head, whole=whole)


def _as_utf8(
    source: Path | bytes, verdict: Sniff, *, utf8: bool
) -> tuple[bytes | None, str] | Unreadable:
    """The file's text as UTF-8 bytes (None when it is UTF-8 already) and the encoding it had."""
    if verdict.encoding is not None:
        data = _transcode(_all_bytes(source), verdict.encoding)
        if data is None:
            return _bad_encoding(verdict.encoding)
        return data, verdict.encoding.removesuffix("-le").removesuffix("-be")
    if not utf8:
        data = _transcode(_all_bytes(source), "cp1252")
        if data is None:
            return _bad_encoding("windows-1252")
        return data, "windows-1252"
    return None, "utf-8-sig" if verdict.bom else "utf-8"


def _all_bytes(source: Path | bytes) -> bytes:
    return source.read_bytes() if isinstance(source, Path) else source


def _transcode(raw: bytes, codec: str) -> bytes | None:
    """``raw`` re-encoded from ``codec`` to UTF-8 without a BOM, or None."""
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError:
        return None
    return text.removeprefix("\ufeff").encode("utf-8")


def _bad_encoding(codec: str) -> Unreadable:
    return Unreadable(
        code=Code.FILE_ENCODING,
        message=(
            "The file's characters cannot be read: it is not UTF-8 text and not "
            f"valid {codec} either. {_SAVE_AS}"
        ),
    )


class _Reader:
    """One read of one file; holds what both paths share."""

    def __init__(
        self,
        body: Path | bytes,
        encoding: str,
        notes: tuple[str, ...],
        *,
        max_rows: int = MAX_ROWS,
    ) -> None:
        self.body = body
        self.encoding = encoding
        self.notes = notes
        self.max_rows = max_rows

    def read(self, head: bytes, *, whole: bool) -> Table | Unreadable:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
        header = _parse_header(text.removeprefix("\ufeff"), whole=whole)
        if isinstance(header, Unreadable):
            return dataclasses.replace(header, encoding=self.encoding)
        headers, header_lines = header
        if not any(cell.strip() for cell in headers):
            return self.unreadable(
                Code.HEADER_MISSING_ROW,
                "The first line is empty. The first line must be the header row "
                "that names the columns, such as: unique_id,first_name,last_name,email",
            )
        fast = (
            None
            if head.startswith(_COMPRESSED)
            else self.read_fast(headers, header_lines, quoted=_quotes_everything(text))
        )
        if fast is not None:
            return fast
        if _count_lines(self.body) - header_lines > self.max_rows:
            return _too_many_rows(self.max_rows)
        return self.read_slowly(headers)

    def unreadable(self, code: Code, message: str) -> Unreadable:
        return Unreadable(code=code, message=message, encoding=self.encoding)

    def polars_source(self) -> str | bytes:
        return str(self.body) if isinstance(self.body, Path) else self.body

    def read_fast(
        self, headers: list[str], header_lines: int, *, quoted: bool = False
    ) -> Table | Unreadable | None:
        """The polars read, or None when only the slow path can tell.

        ``quoted`` says the file's head quotes every value: its lines are
        first matched against the simple shape of such a line (see
        :func:`_line_facts`). Either way the answer is the same.

        The line pass runs first: it memory-maps the file, and doing that while
        the parsed frame is also in memory would add the file's size to the
        peak. What it keeps is small: a length per line and the few quoted lines.
        It also counts the lines, stopping one past the most allowed.
        """
        source = self.polars_source()
        try:
            lines = _line_facts(source, header_lines, most=self.max_rows, quoted=quoted)
            if lines.lengths.len() > self.max_rows:
                return _too_many_rows(self.max_rows)
            # Each value spanning lines starts and ends on a line with an odd
            # number of quotes, and is parsed as text: too many go slowly.
            if int((lines.quotes % 2 == 1).sum()) > _MOST_TEXT_LINES:
                return None
            if not _quoting_is_regular(lines, source, header_lines):
                return None
        except pl.exceptions.ComputeError:
            return None
        if lines.first_nul is not None:
            return self.unreadable(
                Code.FILE_BINARY,
                f"This is not a CSV file: line {lines.first_nul + header_lines + 1} "
                f"contains NUL bytes, which text never has. {_SAVE_AS}",
            )
        try:
            frame = pl.read_csv(
                source,
                has_header=True,
                infer_schema=False,
                truncate_ragged_lines=True,
                raise_if_empty=False,
            )
        except pl.exceptions.ComputeError:
            return None
        if frame.width != len(headers):
            return None
        frame.columns = [column(i) for i in range(frame.width)]
        value_bytes = _value_bytes(frame)
        ragged = _ragged_fast(
            frame,
            value_bytes,
            lines,
            lambda wanted: _line_texts(self.body, header_lines, wanted),
        )
        if ragged is None:
            return None
        return self.table(headers, frame, ragged, value_bytes)

    def table(
        self,
        headers: list[str],
        frame: pl.DataFrame,
        ragged: pl.DataFrame,
        value_bytes: pl.Series,
    ) -> Table:
        blank = value_bytes == 0
        # A long row may hold its only values beyond the header's columns.
        beyond = ragged.filter(pl.col("fields") > len(headers))["record"]
        if beyond.len():
            blank = blank.scatter(beyond, values=False)
        return Table(
            headers=tuple(headers),
            frame=frame,
            encoding=self.encoding,
            ragged=ragged,
            blank=blank.rename("blank"),
            notes=self.notes,
        )

    def read_slowly(self, headers: list[str]) -> Table | Unreadable:
        """Parse every record with the csv module; exact, and slow."""
        width = len(headers)
        chunks: list[pl.DataFrame] = []
        ragged_records: list[int] = []
        ragged_fields: list[int] = []
        columns: list[list[str]] = [[] for _ in range(width)]
        schema = dict.fromkeys((column(i) for i in range(width)), pl.String)
        with self.text_stream() as stream:
            reader = csv.reader(stream, strict=True)
            record = -1
            start = 1
            try:
                next(reader)
                start = reader.line_num + 1
                for record, row in enumerate(reader):
                    fields = row or [""]
                    if len(fields) != width and (
                        len(fields) < width or any(f.strip() for f in fields[width:])
                    ):
                        ragged_records.append(record)
                        ragged_fields.append(len(fields))
                    for i in range(width):
                        columns[i].append(fields[i] if i < len(fields) else "")
                    if len(columns[0]) == _SLOW_CHUNK_ROWS:
                        chunks.append(pl.DataFrame(dict(zip(schema, columns, strict=True))))
                        columns = [[] for _ in range(width)]
                    start = reader.line_num + 1
            except csv.Error as exc:
                return self.malformed(exc, start=start, line=reader.line_num)
        chunks.append(pl.DataFrame(dict(zip(schema, columns, strict=True)), schema=schema))
        frame = pl.concat(chunks)
        return self.table(
            headers,
            frame,
            _ragged_frame(ragged_records, ragged_fields),
            _value_bytes(frame),
        )

    def text_stream(self) -> io.TextIOWrapper:
        raw = self.body.open("rb") if isinstance(self.body, Path) else io.BytesIO(self.body)
        # The body is UTF-8 by now (others were transcoded); a BOM is skipped.
        return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")

    def malformed(self, exc: csv.Error, *, start: int, line: int) -> Unreadable:
        reason = str(exc)
        if "NUL" in reason:
            return self.unreadable(
                Code.FILE_BINARY,
                f"This is not a CSV file: line {line} contains NUL bytes, which text "
                f"never has. {_SAVE_AS}",
            )
        if "unexpected end of data" in reason:
            message = (
                f'A quoted value that starts on line {start} is never closed: a " is '
                "missing, so the rest of the file would be read as one value."
            )
        elif "expected after" in reason:
            message = (
                f"Line {line}: text follows the closing quote of a value. Inside a "
                'quoted value, write a quote character as two quotes ("").'
            )
        elif "field larger than field limit" in reason:
            message = f"Line {line}: a value is longer than {csv.field_size_limit()} characters."
        else:
            message = f"Line {line}: the row is not valid CSV."
        return self.unreadable(Code.CSV_MALFORMED, message)


def _parse_header(text: str, *, whole: bool) -> tuple[list[str], int] | Unreadable:
    """The first record's cells and how many physical lines it spans."""
    taken: list[str] = []

    def lines() -> Iterator[str]:
        for line in io.StringIO(text, newline=""):
            taken.append(line)
            yield line

    reader = csv.reader(lines(), strict=True)
    try:
        row = next(reader, None)
    except csv.Error:
        if not whole:
            return _header_too_long()
        return Unreadable(
            code=Code.CSV_MALFORMED,
            message="The header row (line 1) is not valid CSV: check its quote characters.",
        )
    if not whole and (not taken or not taken[-1].endswith(("\n", "\r"))):
        return _header_too_long()
    return (row or [""]), len(taken)


def _header_too_long() -> Unreadable:
    return Unreadable(
        code=Code.CSV_MALFORMED,
        message=(
            f"The header row is longer than {HEAD_SIZE // 1024} KiB, which no list "
            "of column names needs: is this really a CSV file?"
        ),
    )


def _ragged_frame(records: list[int], fields: list[int]) -> pl.DataFrame:
    return pl.DataFrame(
        {"record": records, "fields": fields},
        schema={"record": pl.UInt32, "fields": pl.UInt32},
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _LineFacts:
    """What the line pass learned about every line after the header.

    ``lengths`` is each line's length in bytes (line break excluded) and
    ``quotes`` how many quote characters it holds. ``alone`` has one value per
    line holding a quote, in order: whether its text is a whole record of
    well-quoted fields. ``simple`` marks the lines that quote every field and
    hold no other quote (``"a","b,c"``): their values hold no quote, their
    field count follows from their length alone, and their quote count is
    not taken (it stands at 2, even and not zero, which is all that the
    roles of lines need of it). ``doubled`` marks the lines holding two
    quotes side by side: once quoting is regular, only their records can
    hold a quote in a value (written ``""``).
    """

    lengths: pl.Series
    quotes: pl.Series
    first_nul: int | None
    alone: pl.Series
    simple: pl.Series
    doubled: pl.Series


def _quotes_everything(head: str) -> bool:
    """Whether most whole lines of the file's head (after the header) quote every value."""
    lines = head.splitlines()[1:-1]
    quoted = sum(1 for line in lines if line.startswith('"') and line.endswith('"'))
    return bool(lines) and quoted * 2 > len(lines)


def _line_facts(source: str | bytes, header_lines: int, *, most: int, quoted: bool) -> _LineFacts:
    """Streaming passes over the file's lines; which ones depends on how it quotes.

    At most ``most + 1`` lines after the header are looked at: one more than
    ``most`` says the file has too many.

    Raises:
        polars.exceptions.ComputeError: the file is not valid UTF-8.
    """
    lines = pl.scan_lines(source).slice(header_lines, most + 1)
    return _quoted_facts(lines) if quoted else _plain_facts(lines)


def _plain_facts(lines: pl.LazyFrame) -> _LineFacts:
    """Two passes: every line measured, then the lines holding a quote or a NUL byte.

    The second keeps those lines (one search for both) and looks at them
    closely; counting quotes on every line would cost more than both passes
    in the usual file, where few lines hold quotes.
    """
    line = pl.col("line")
    every, marked = pl.collect_all(
        [
            lines.select(n=line.str.len_bytes()),
            lines.with_row_index("at")
            .filter(line.str.contains('["\x00]'))
            .select(
                "at",
                q=line.str.count_matches('"', literal=True),
                nul=line.str.contains("\x00", literal=True),
                alone=line.str.contains(_WHOLE_LINE),
                doubled=line.str.contains('""', literal=True),
            ),
        ],
        engine="streaming",
    )
    quoted = marked.filter(pl.col("q") > 0)
    nul = marked.filter(pl.col("nul"))["at"]
    nothing = pl.repeat(value=False, n=every.height, eager=True, dtype=pl.Boolean)
    return _LineFacts(
        lengths=every["n"],
        quotes=pl.repeat(0, n=every.height, eager=True, dtype=pl.UInt32).scatter(
            quoted["at"], quoted["q"]
        ),
        first_nul=int(nul[0]) if nul.len() else None,
        alone=quoted["alone"],
        simple=nothing,
        # A new series: scatter changes the one it is called on.
        doubled=nothing.clone().scatter(marked["at"], marked["doubled"]),
    )


def _quoted_facts(lines: pl.LazyFrame) -> _LineFacts:
    """For a file that quotes every value: one pass over every line, and one over a few.

    The first pass measures each line and matches it against the simple
    shape, which is what nearly every line of such a file is; a simple line
    needs nothing more (the shape admits no NUL byte). Only the other lines
    (a quote inside a value, a value spanning lines, an unquoted line, a
    NUL byte) are looked at closely by the second.
    """
    line = pl.col("line")
    every = lines.select(n=line.str.len_bytes(), simple=line.str.contains(_SIMPLE_LINE)).collect(
        engine="streaming"
    )
    simple = every["simple"]
    quotes = simple.cast(pl.UInt32) * 2
    unclear = (~simple).arg_true()
    # A simple line's values hold no quote, whatever "" it holds (empty values).
    doubled = pl.repeat(value=False, n=every.height, eager=True, dtype=pl.Boolean)
    holds_quotes, alone = simple, simple
    first_nul = None
    if unclear.len():
        found = (
            lines.with_row_index("at")
            .filter(pl.col("at").is_in(unclear.implode()))
            .select(
                q=line.str.count_matches('"', literal=True).cast(pl.UInt32),
                nul=line.str.contains("\x00", literal=True),
                alone=line.str.contains(_WHOLE_LINE),
                doubled=line.str.contains('""', literal=True),
            )
            .collect(engine="streaming")
        )
        # New series each time: scatter changes the one it is called on.
        quotes = quotes.scatter(unclear, found["q"])
        holds_quotes = simple.clone().scatter(unclear, found["q"] > 0)
        alone = simple.clone().scatter(unclear, found["alone"])
        doubled = doubled.scatter(unclear, found["doubled"])
        nul = unclear.filter(found["nul"])
        first_nul = int(nul[0]) if nul.len() else None
    return _LineFacts(
        lengths=every["n"],
        quotes=quotes,
        first_nul=first_nul,
        alone=alone.filter(holds_quotes),
        simple=simple,
        doubled=doubled,
    )


def _quoting_is_regular(lines: _LineFacts, source: str | bytes, header_lines: int) -> bool:
    """Whether every quoted line has the shape its place demands.

    polars reads some broken quoting its own way (``""a""`` becomes ``a``)
    and a quote inside an unquoted value can look like the start of a value
    spanning lines, so each line holding quotes must fit its role: a whole
    record, the opening or closing line of a spanning value (alternately,
    by the parity of quotes before it), or a line inside one. Only files
    with values spanning lines have lines of the other roles; their shapes
    are checked by a second pass over just those lines.
    """
    odd_lines = lines.quotes % 2 == 1
    if not odd_lines.any():
        # No value spans lines: every quoted line must be a whole record.
        return bool(lines.alone.all())
    at = (lines.quotes > 0).arg_true()
    odd = odd_lines.gather(at)
    before = odd.cast(pl.Int64).cum_sum() - odd.cast(pl.Int64)
    role = pl.DataFrame(
        {"at": at, "odd": odd, "before": before, "alone": lines.alone}
    ).with_columns(
        role=pl.when(pl.col("odd") & (pl.col("before") % 2 == 0))
        .then(pl.lit("opens"))
        .when(pl.col("odd"))
        .then(pl.lit("closes"))
        .when(pl.col("before") % 2 == 1)
        .then(pl.lit("inside"))
        .otherwise(pl.lit("alone"))
    )
    if not role.filter(pl.col("role") == "alone")["alone"].all():
        return False
    spanning = role.filter(pl.col("role") != "alone").select("at", "role")
    line = pl.col("line")
    texts = (
        pl.scan_lines(source)
        .slice(header_lines)
        .with_row_index("at")
        .filter(pl.col("at").is_in(spanning["at"].implode()))
        .select(
            opens=line.str.contains(_OPENING_LINE),
            closes=line.str.contains(_CLOSING_LINE),
            inside=line.str.contains(_INSIDE_LINE),
        )
        .collect(engine="streaming")
    )
    if texts.height != spanning.height:
        return False
    fits = (
        pl.concat([spanning, texts], how="horizontal")
        .select(
            pl.when(pl.col("role") == "opens")
            .then(pl.col("opens"))
            .when(pl.col("role") == "closes")
            .then(pl.col("closes"))
            .otherwise(pl.col("inside"))
        )
        .to_series()
    )
    return bool(fits.all())


def _value_bytes(frame: pl.DataFrame) -> pl.Series:
    """Each record's total bytes of values: zero for a blank record."""
    if frame.width == 0:
        return pl.repeat(0, n=frame.height, eager=True, dtype=pl.Int64)
    return frame.select(
        pl.sum_horizontal(pl.all().str.len_bytes().fill_null(0)).cast(pl.Int64)
    ).to_series()


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Layout:
    """How lines make records.

    ``record_of_line`` is the record of each line; ``single`` says which lines
    are whole records (the others belong to a value spanning lines). Both are
    None in the usual file, where every line is the record of its number:
    they would cost two columns the length of the file for nothing.
    """

    record_of_line: pl.Series | None
    single: pl.Series | None
    spans: list[tuple[int, int]]

    def record(self, line: int) -> int:
        """The record the given line belongs to."""
        return line if self.record_of_line is None else int(self.record_of_line[line])


def _layout(lines: _LineFacts, height: int) -> _Layout | None:
    """Lines to records, or None when the lines cannot make ``height`` records.

    A record spans lines from a line with an odd number of quotes to the next
    such line; the lines between hold none or only doubled ones.
    """
    total = lines.lengths.len()
    odd_at = (lines.quotes % 2 == 1).arg_true().to_list()
    if len(odd_at) % 2:
        return None
    spans = list(zip(odd_at[0::2], odd_at[1::2], strict=True))
    if not spans:
        # The usual case: every record is one line.
        if total != height:
            return None
        return _Layout(record_of_line=None, single=None, spans=[])
    inner = pl.select(
        pl.int_ranges(
            pl.Series([first + 1 for first, _ in spans]),
            pl.Series([last + 1 for _, last in spans]),
        ).explode()
    ).to_series()
    starts = pl.repeat(value=True, n=total, eager=True, dtype=pl.Boolean).scatter(
        inner, values=False
    )
    if int(starts.sum()) != height:
        return None
    return _Layout(
        record_of_line=starts.cast(pl.Int64).cum_sum() - 1,
        single=starts.clone().scatter([first for first, _ in spans], values=False),
        spans=spans,
    )


def _field_counts(
    frame: pl.DataFrame, value_bytes: pl.Series, lines: _LineFacts, layout: _Layout
) -> tuple[pl.Series, set[int]]:
    """Each line's field count by arithmetic, and the records it cannot judge.

    A record on one line is its values joined by commas, each quote inside a
    quoted value doubled, and quoted values wrapped in two more; so its field
    count is ``length - value bytes - quotes in line + quotes in values + 1``.
    That holds only where every quote in a value was doubled: one written
    bare, as in 5'10", is not, so records whose values hold quotes are
    returned to be read as text. Quoting is regular by now (no quote
    inside an unquoted value), so a value can hold a quote only on a line
    holding a doubled one.
    """
    per_line = layout.record_of_line
    line_bytes = value_bytes if per_line is None else value_bytes.gather(per_line)
    # Int32 where every figure fits (a record's values are no longer than its
    # lines, which are no longer than them all): these columns are as long as the file.
    kind = pl.Int32 if int(lines.lengths.sum()) < 2**31 else pl.Int64
    separators = lines.lengths.cast(kind) - line_bytes.cast(kind)
    if lines.simple.any():
        # Each field of a simple line is its value, two quotes and a comma
        # (one fewer comma than fields): a long row comes out long still.
        fields = pl.select(
            pl.when(lines.simple)
            .then((separators + 1) // 3)
            .otherwise(separators - lines.quotes.cast(kind) + 1)
        ).to_series()
    else:
        fields = separators - lines.quotes.cast(kind) + 1
    del separators
    # Records in order (lines are), so that a filter by mask lines up with them.
    quoted_records = (
        lines.doubled.arg_true()
        if per_line is None
        else per_line.filter(lines.doubled).unique(maintain_order=True)
    )
    if quoted_records.is_empty():
        return fields, set()
    quotes_in_values = pl.sum_horizontal(
        pl.all().str.count_matches('"', literal=True).fill_null(0)
    ).cast(pl.Int64)
    if quoted_records.len() * 4 > frame.height:
        # Gathering most rows costs more than counting in all of them; a
        # record whose line holds no quote has none in its values either.
        extra = frame.select(quotes_in_values).to_series()
        in_values = extra.gather(quoted_records)
    else:
        wanted = frame.filter(marked(frame.height, quoted_records))
        in_values = wanted.select(quotes_in_values).to_series()
        extra = pl.repeat(0, n=frame.height, eager=True, dtype=pl.Int64).scatter(
            quoted_records, in_values
        )
    fields = fields + (extra if per_line is None else extra.gather(per_line))
    return fields, set(quoted_records.filter(in_values > 0).to_list())


def _ragged_fast(
    frame: pl.DataFrame,
    value_bytes: pl.Series,
    lines: _LineFacts,
    fetch: Callable[[list[int]], dict[int, str]],
) -> pl.DataFrame | None:
    """Records with a wrong field count, or None when lines and records disagree.

    Counts come from arithmetic on line lengths (see :func:`_field_counts`).
    Records spanning lines, records whose values hold quotes, and rows the
    arithmetic says are long (to see whether their extra fields hold
    anything) are parsed from their text.

    Args:
        frame: the values polars parsed, one column per header cell.
        value_bytes: each record's total bytes of values.
        lines: the facts of the line pass.
        fetch: reads the text of the given lines (numbered after the header).
    """
    width = frame.width
    layout = _layout(lines, frame.height)
    if layout is None:
        return None
    fields, unjudged = _field_counts(frame, value_bytes, lines, layout)
    if layout.record_of_line is None or layout.single is None:
        # Each line is its record: only the few lines that are off are kept.
        wrong = fields != width
        off = pl.DataFrame({"line": wrong.arg_true(), "fields": fields.filter(wrong)})
        off = off.with_columns(record=pl.col("line").cast(pl.Int64))
        unjudged_lines = sorted(unjudged)
    else:
        counted = (
            pl.DataFrame(
                {"record": layout.record_of_line, "fields": fields, "single": layout.single}
            )
            .with_row_index("line")
            .filter(pl.col("single"))
        )
        off = counted.filter(pl.col("fields") != width)
        unjudged_lines = counted.filter(pl.col("record").is_in(list(unjudged)))["line"].to_list()
    # Short rows judged by arithmetic stay a frame: a file can have millions.
    short = off.filter(
        (pl.col("fields") < width) & ~pl.col("record").is_in(pl.Series(list(unjudged)).implode())
    ).select("record", "fields")
    found: dict[int, int] = {}
    to_read = off.filter(pl.col("fields") > width)["line"].to_list() + unjudged_lines
    text_lines = len(to_read) + sum(last - first + 1 for first, last in layout.spans)
    if text_lines > max(_MOST_TEXT_LINES, frame.height // 20):
        # Reading that many lines one by one costs far more time and memory
        # than the csv module's single pass: a file of 5,000,000 lines that
        # each hold one quote (20 MB) needed 4.7 GiB here, and 0.3 GiB there.
        return None
    wanted = {line: [line] for line in to_read}
    wanted.update({first: list(range(first, last + 1)) for first, last in layout.spans})
    texts = fetch(sorted({n for numbers in wanted.values() for n in numbers}))
    for first, numbers in wanted.items():
        cells = _cells("\n".join(texts[n] for n in numbers))
        if cells is None:
            return None
        if len(cells) < width or any(c.strip() for c in cells[width:]):
            found[layout.record(first)] = len(cells)
    parsed = _ragged_frame(list(found), list(found.values()))
    return pl.concat([short.cast(parsed.schema), parsed]).sort("record")


def _cells(text: str) -> list[str] | None:
    try:
        return next(csv.reader(io.StringIO(text, newline=""), strict=True), [""])
    except csv.Error:
        return None


def _line_texts(body: Path | bytes, header_lines: int, wanted: list[int]) -> dict[int, str]:
    """The text of the given lines (numbered from 0 after the header).

    A plain walk over the file: it holds one line at a time, unlike a polars
    scan, which would map the whole file while the parsed frame is in memory.
    """
    if not wanted:
        return {}
    left = set(wanted)
    texts: dict[int, str] = {}
    raw = body.open("rb") if isinstance(body, Path) else io.BytesIO(body)
    with raw:
        for number, line in enumerate(raw, start=-header_lines):
            if number in left:
                text = line.removesuffix(b"\n").removesuffix(b"\r")
                texts[number] = text.decode("utf-8", errors="replace")
                left.discard(number)
                if not left:
                    break
    return texts
