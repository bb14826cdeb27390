"""File names: shown escaped, stored losslessly, archived within NAME_MAX."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from tests.support.names import customer_names
from watcher.core.names import (
    NAME_MAX,
    answer_name,
    archive_name,
    archived_at,
    attachment_name,
    from_stored,
    shown,
    to_stored,
)


def test_archive_names_keep_the_suffix_and_differ_per_file() -> None:
    """Archive names carry a UTC stamp and the file id, and keep the suffix."""
    assert archive_name("users.csv", "0123456789ab", 0.0) == "users.19700101T000000Z.01234567.csv"
    assert archive_name("README", "abcdef0123", 0.0) == "README.19700101T000000Z.abcdef01"
    assert archive_name(".hidden", "abcdef0123", 0.0) == ".hidden.19700101T000000Z.abcdef01"


def test_a_refused_archive_name_ends_in_refused() -> None:
    """A refused entry's archive name says so after its own suffix."""
    assert (
        archive_name("evil.csv", "0123456789ab", 0.0, refused=True)
        == "evil.19700101T000000Z.01234567.csv.refused"
    )


def test_a_name_of_255_bytes_gets_an_archive_name_that_fits_with_its_reports() -> None:
    """The longest name a folder can hold still archives, with room for .failures.csv."""
    name = "é" * 125 + ".csv"  # 254 bytes
    for refused in (False, True):
        archived = archive_name(name, "0123456789ab", 0.0, refused=refused)
        assert len(os.fsencode(archived + ".failures.csv")) <= NAME_MAX
        assert archived.startswith("é" * 10)
        assert archived.endswith(".01234567.csv" + (".refused" if refused else ""))


def test_a_long_name_is_cut_on_a_character_boundary() -> None:
    """Shortening never splits a multi-byte character into an undecodable byte."""
    archived = archive_name("€" * 100, "0123456789ab", 0.0)
    assert archived.encode("utf-8").decode("utf-8") == archived


def test_a_long_dotted_tail_is_not_taken_for_an_extension() -> None:
    """A 200-character text after the last dot is shortened like a stem."""
    archived = archive_name("a." + "x" * 250, "0123456789ab", 0.0)
    assert len(os.fsencode(archived)) <= NAME_MAX - len(".failures.csv")
    assert archived.endswith(".19700101T000000Z.01234567")


def test_control_characters_and_undecodable_bytes_are_shown_escaped() -> None:
    """A newline, a CR, a vertical tab and the byte 0xFF are shown as escapes."""
    name = os.fsdecode(b"a\nb\rc\x0bd\xff\\.csv")
    assert shown(name) == "a\\x0ab\\x0dc\\x0bd\\xff\\\\.csv"


def test_ordinary_names_are_shown_as_they_are() -> None:
    """A name with spaces and accents is shown unchanged."""
    assert shown("Liste des élèves 2026.csv") == "Liste des élèves 2026.csv"


def test_undecodable_names_are_stored_as_bytes_and_come_back_the_same() -> None:
    """Names that are not UTF-8 round-trip through the journal's form."""
    name = os.fsdecode(b"bad\xff.csv")
    stored = to_stored(name)
    assert stored == b"bad\xff.csv"
    assert from_stored(stored) == name
    assert to_stored("good.csv") == "good.csv"


def test_attachment_names_hold_no_control_characters() -> None:
    """Characters a mail header cannot hold become underscores; the stem is short."""
    assert attachment_name(os.fsdecode(b"x\ny\xff.csv")) == "failed-x_y_.csv"
    assert attachment_name("users.csv") == "failed-users.csv"
    assert len(attachment_name("u" * 300 + ".csv")) == len("failed-.csv") + 100


def test_archived_at_reads_the_stamp_the_service_wrote() -> None:
    """The time of an archive, of its reports and of a refused entry's archive."""
    when = 1_790_000_000.0
    for name in ("users.csv", "README", ".hidden", "a." + "x" * 250, "é" * 125 + ".csv"):
        for refused in (False, True):
            archived = archive_name(name, "0123456789ab", when, refused=refused)
            for suffix in ("", ".result.json", ".failures.csv"):
                assert archived_at(archived + suffix) == int(when)


def test_a_customers_stamp_in_the_name_is_never_read() -> None:
    """Impossible and future dates the customer wrote are not the archive's time."""
    for name in (
        "x.20260230T000000Z.deadbeef.csv",
        "x.20269999T999999Z.deadbeef.csv",
        "x.29991231T000000Z.deadbeef.csv",
        "x.29991231T000000Z.deadbeef",
        "x.29991231T000000Z.deadbeef.csv.refused",
    ):
        assert archived_at(archive_name(name, "0123456789ab", 0.0)) == 0


def test_names_the_service_did_not_make_have_no_archive_time() -> None:
    """An impossible stamp, a missing id or no tail at all is None, not an error."""
    for name in (
        "notes.txt",
        "x.20260230T000000Z.deadbeef.csv",
        "x.20269999T999999Z.deadbeef",
        "x.20200101T000000Z.DEADBEEF.csv",
        "0123456789abcdef0123456789abcdef.refused",
        ".removed-0123456789ab",
    ):
        assert archived_at(name) is None


@given(customer_names(), st.floats(min_value=0, max_value=4_102_444_800))
def test_every_archive_name_gives_back_its_time(name: str, when: float) -> None:
    """Whatever the customer's name, its archive and reports carry the archive's time."""
    archived = archive_name(name, "0123456789abcdef", when)
    assert len(os.fsencode(archived + ".failures.csv")) <= NAME_MAX
    for suffix in ("", ".result.json", ".failures.csv"):
        assert archived_at(archived + suffix) == int(when)


@given(customer_names())
def test_archived_at_never_raises(name: str) -> None:
    """Any name a folder can hold gives a time or None."""
    found = archived_at(name)
    assert found is None or isinstance(found, int)


def test_answer_names_fit_whatever_the_upload_is_called() -> None:
    """A short name gets its suffix; a long one is cut, with a digest that keeps it apart."""
    assert answer_name("users.csv", ".check.json") == "users.csv.check.json"
    long_a, long_b = "a" * 250 + "1.csv", "a" * 250 + "2.csv"
    first, second = answer_name(long_a, ".check.json"), answer_name(long_b, ".check.json")
    assert len(os.fsencode(first)) == NAME_MAX
    assert first.endswith(".check.json")
    assert first != second


@given(customer_names(), st.sampled_from([".check.json", ".check.csv"]))
def test_every_answer_name_fits_and_is_an_answer(name: str, suffix: str) -> None:
    """Whatever the customer's name, the answer beside it fits a folder and ends in the suffix."""
    answer = answer_name(name, suffix)
    assert len(os.fsencode(answer)) <= NAME_MAX
    assert answer.endswith(suffix)
