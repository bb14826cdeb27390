"""What the first bytes of an upload say about it, before any parsing.

Customers save spreadsheets under a ``.csv`` name, export "Unicode text"
(UTF-16) from Excel, or use Excel for Mac's "CSV (Macintosh)" with bare CR line
endings. polars reads most of these without complaint and returns junk, so the
reader asks this module first. Everything here is a pure function of bytes.
"""

from __future__ import annotations

import codecs
import dataclasses

__all__ = ["HEAD_SIZE", "OLE", "ZIP", "Sniff", "may_be_workbook", "sniff", "utf8_prefix_ok"]

HEAD_SIZE = 64 * 1024
# How every .xlsx and .ods file (a zip) and every .xls file (an OLE file) starts.
ZIP = b"PK\x03\x04"
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (ZIP, "an Excel workbook (.xlsx) or another zip archive"),
    (OLE, "an old-style Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"{\\rtf", "a rich-text document (.rtf)"),
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Sniff:
    """The verdict on a file's first bytes.

    ``encoding`` is a Python codec name for text that must be transcoded
    before parsing (UTF-16 and UTF-32), or ``None`` when the bytes are meant to
    be UTF-8 or Windows-1252, which the reader decides later. ``binary`` names
    what the file looks like when it is not text at all.
    """

    encoding: str | None = None
    bom: bool = False
    binary: str | None = None


def may_be_workbook(head: bytes) -> bool:
    """Whether a file's first bytes open a zip or an OLE file, as every workbook does."""
    return head.startswith((ZIP, OLE))


def sniff(head: bytes) -> Sniff:
    """Classify a file from its first bytes (up to :data:`HEAD_SIZE`)."""
    for signature, description in _SIGNATURES:
        if head.startswith(signature):
            return Sniff(binary=description)
    for mark, codec in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if head.startswith(mark):
            return Sniff(encoding=codec, bom=True)
    if b"\x00" in head:
        utf16 = _bomless_utf16(head)
        if utf16 is None:
            return Sniff(binary="binary data (it contains NUL bytes)")
        return Sniff(encoding=utf16)
    return Sniff(bom=head.startswith(codecs.BOM_UTF8))


def _bomless_utf16(head: bytes) -> str | None:
    """The UTF-16 byte order of mostly-ASCII text without a BOM, if it is that."""
    sample = head[: 2 * 512]
    if len(sample) < 4:  # noqa: PLR2004 - two UTF-16 code units at least
        return None
    even_nul = sample[0::2].count(0)
    odd_nul = sample[1::2].count(0)
    half = len(sample) // 2
    # ASCII text in UTF-16 has a NUL in every other byte and almost none between.
    if odd_nul >= 0.9 * half and even_nul <= 0.1 * half:
        return "utf-16-le"
    if even_nul >= 0.9 * half and odd_nul <= 0.1 * half:
        return "utf-16-be"
    return None


def utf8_prefix_ok(head: bytes, *, complete: bool) -> bool:
    """Whether ``head`` is valid UTF-8, allowing a cut-off last character.

    Args:
        head: the first bytes of a file.
        complete: whether ``head`` is the whole file (then nothing may be cut).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    return True
