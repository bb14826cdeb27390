"""Classifying a file by its first bytes."""

from __future__ import annotations

import codecs

import pytest

from watcher.core.sniffing import Sniff, sniff, utf8_prefix_ok


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"PK\x03\x04\x14\x00", "an Excel workbook (.xlsx) or another zip archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "an old-style Excel workbook (.xls)"),
        (b"%PDF-1.7", "a PDF document"),
        (b"\x1f\x8b\x08", "a gzip-compressed file"),
        (b"a,b\n\x00\x01\x02\x03\xff\xfe\x00", "binary data (it contains NUL bytes)"),
    ],
)
def test_binary_files_are_named(head: bytes, kind: str) -> None:
    """Known binary signatures and stray NUL bytes mark a file as not text."""
    assert sniff(head) == Sniff(binary=kind)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (codecs.BOM_UTF16_LE + "a,b".encode("utf-16-le"), Sniff(encoding="utf-16-le", bom=True)),
        (codecs.BOM_UTF16_BE + "a,b".encode("utf-16-be"), Sniff(encoding="utf-16-be", bom=True)),
        (codecs.BOM_UTF32_LE + "a".encode("utf-32-le"), Sniff(encoding="utf-32-le", bom=True)),
        ("unique_id,email\n1,a@b.c\n".encode("utf-16-le"), Sniff(encoding="utf-16-le")),
        ("unique_id,email\n1,a@b.c\n".encode("utf-16-be"), Sniff(encoding="utf-16-be")),
    ],
)
def test_utf16_and_utf32_are_recognised(head: bytes, expected: Sniff) -> None:
    """Wide encodings are found with or without a byte order mark."""
    assert sniff(head) == expected


def test_a_utf8_bom_is_noted() -> None:
    """A UTF-8 BOM is reported, not refused (line endings are the reader's business)."""
    assert sniff(codecs.BOM_UTF8 + b"a,b\r1,2\r") == Sniff(bom=True)
    assert sniff(b"a,b\r\n1,2\r\n") == Sniff()


def test_a_cut_off_character_at_the_end_of_the_head_is_fine() -> None:
    """A multi-byte character split by the head's end is not an encoding error."""
    cut = "é".encode()[:1]
    assert utf8_prefix_ok(b"abc" + cut, complete=False)
    assert not utf8_prefix_ok(b"abc" + cut, complete=True)
    assert not utf8_prefix_ok(b"caf\xe9 au lait", complete=False)
