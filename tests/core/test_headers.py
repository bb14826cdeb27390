"""Matching header rows to schema fields."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import small_schema
from watcher.core.codes import Code, Problem
from watcher.core.headers import Column, match_headers, spreadsheet_letter

SCHEMA = small_schema(
    {
        "name": "unique_id",
        "constraints": {"required": True},
        "possibleNames": ["unique_id", "Unique ID"],
    },
    {"name": "email", "possibleNames": ["email", "Email", "Email Address"]},
    {"name": "province", "possibleNames": ["province", "state"]},
    {"name": "source", "constraints": {"required": True}, "default": "CSV"},
)


def codes(headers: tuple[str, ...], schema: Any = SCHEMA) -> list[Code]:
    """The codes of the problems a header row has."""
    return [p.code for p in match_headers(headers, schema).problems]


def test_possible_names_map_headers_to_fields() -> None:
    """Each accepted spelling names its field, in file order."""
    match = match_headers(("Unique ID", "Email Address", "state"), SCHEMA)
    assert match.columns == (
        Column(index=0, header="Unique ID", field="unique_id"),
        Column(index=1, header="Email Address", field="email"),
        Column(index=2, header="state", field="province"),
    )
    assert match.problems == ()


def test_surrounding_spaces_in_headers_are_ignored() -> None:
    """A header with invisible padding still matches."""
    assert match_headers((" unique_id ", "email\t"), SCHEMA).problems == ()


def test_exact_matching_refuses_other_capitals_and_says_so() -> None:
    """'EMAIL' is unknown by default, with a hint about capital letters."""
    (problem,) = match_headers(("unique_id", "EMAIL"), SCHEMA).problems
    assert problem == Problem(
        code=Code.HEADER_UNKNOWN,
        message=(
            'Column B "EMAIL" is not a column this import knows. Did you mean "email"? '
            "Headers must match exactly, including capital letters."
        ),
    )


def test_case_insensitive_schemas_accept_other_capitals() -> None:
    """A schema may opt into matching headers regardless of case."""
    schema = small_schema({"name": "email"}, headerMatching="caseInsensitive")
    match = match_headers(("EMAIL",), schema)
    assert (match.problems, match.columns[0].field) == ((), "email")


def test_a_misspelt_header_gets_a_suggestion() -> None:
    """An unknown header names the closest accepted spelling."""
    (problem,) = match_headers(("unique_id", "Emial Address"), SCHEMA).problems
    assert problem.message.endswith('Did you mean "Email Address"?')


def test_a_header_far_from_any_name_gets_general_advice() -> None:
    """Without a close spelling, the message says to check the list."""
    (problem,) = match_headers(("unique_id", "zzzz"), SCHEMA).problems
    assert problem.message.endswith("Check the spelling against the list of accepted column names.")


def test_two_headers_naming_one_field_fail() -> None:
    """'province' and 'state' in one file are the same attribute twice."""
    (problem,) = match_headers(("unique_id", "province", "state"), SCHEMA).problems
    assert problem == Problem(
        code=Code.HEADER_DUPLICATE,
        message='Columns B "province" and C "state" both name province: keep only one of them.',
        field="province",
    )


def test_a_missing_required_column_fails_with_its_spellings() -> None:
    """Without the key column the file fails, listing the accepted names."""
    (problem,) = match_headers(("email",), SCHEMA).problems
    assert problem == Problem(
        code=Code.HEADER_REQUIRED,
        message=(
            "The required column unique_id is missing. "
            'Add a column named "unique_id" or "Unique ID".'
        ),
        field="unique_id",
    )


def test_a_required_column_with_a_default_may_be_absent() -> None:
    """A default supplies a required attribute the file leaves out."""
    assert codes(("unique_id",)) == []


def test_the_failure_report_columns_are_skipped() -> None:
    """A fixed failure report can be uploaded as it is."""
    match = match_headers(
        ("import_row", "unique_id", "Import_Error_Code", "import_error_field", "import_error"),
        SCHEMA,
    )
    assert match.problems == ()
    assert [c.field for c in match.columns] == [None, "unique_id", None, None, None]


def test_unnamed_columns_are_set_aside_for_a_data_check() -> None:
    """Columns with an empty header are listed; their data decides."""
    match = match_headers(("unique_id", "", " "), SCHEMA)
    assert (match.problems, match.unnamed) == ((), (1, 2))


def test_unknown_columns_can_be_ignored_by_the_schema() -> None:
    """With unknownColumns = ignore, extra columns are noted and skipped."""
    schema = small_schema({"name": "a"}, unknownColumns="ignore")
    match = match_headers(("a", "notes"), schema)
    assert (match.problems, match.ignored) == ((), ("notes",))


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_another_delimiter_is_recognised(delimiter: str) -> None:
    """A header that is one cell split by ; or tabs points at the delimiter."""
    assert codes((delimiter.join(["unique_id", "email"]),)) == [Code.WRONG_DELIMITER]


@pytest.mark.parametrize(
    ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (27, "AB"), (701, "ZZ"), (702, "AAA")]
)
def test_spreadsheet_letters(index: int, letters: str) -> None:
    """Column positions are named as a spreadsheet names them."""
    assert spreadsheet_letter(index) == letters
