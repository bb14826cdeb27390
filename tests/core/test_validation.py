"""Validation: every rule, row numbering, counts, and the screens' soundness."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import check, failures, small_schema
from watcher.core import rules
from watcher.core.codes import Code
from watcher.core.reading import read_table
from watcher.core.validation import ValidationReport, validate

if TYPE_CHECKING:
    from watcher.core.schema import Schema


def one_field(field: dict[str, Any], *values: str, **top: Any) -> ValidationReport:
    """Validate ``values`` in column v, beside a filler column so no row is blank."""
    schema = small_schema({"name": "v", **field}, {"name": "z"}, **top)
    body = "".join(f'"{v}",1\n' for v in values)
    return check("v,z\n" + body, schema)


def codes_by_row(report: ValidationReport) -> dict[int, list[str]]:
    """Each failing row's codes."""
    out: dict[int, list[str]] = {}
    for row, _, code in failures(report):
        out.setdefault(row, []).append(code)
    return out


@pytest.mark.parametrize(
    ("field", "good", "bad", "code"),
    [
        ({"constraints": {"required": True}}, ["x", " y "], ["", "   "], Code.REQUIRED),
        ({"constraints": {"maxLength": 3}}, ["abc", " ab "], ["abcd", "ééée"], Code.TOO_LONG),
        ({"constraints": {"minLength": 3}}, ["abc", "ééé"], ["ab", " ab "], Code.TOO_SHORT),
        ({"constraints": {"pattern": "[A-Z]+"}}, ["AB", " AB "], ["Ab", "A B"], Code.PATTERN),
        ({"constraints": {"pattern": "a b|c"}}, ["a b", " c"], ["ab", "a  b"], Code.PATTERN),
        ({"constraints": {"enum": ["ON", "QC"]}}, ["ON", " QC"], ["on", "BC"], Code.NOT_IN_ENUM),
        (
            {"format": "email"},
            ["a@b.co", " é@x.org "],
            ["a@b", "a b@c.d", "@b.c"],
            Code.INVALID_EMAIL,
        ),
        ({"format": "uri"}, ["https://x.org/a"], ["x.org", "http: //x"], Code.INVALID_URI),
        (
            {"format": "uuid"},
            ["123e4567-e89b-12d3-a456-426614174000"],
            ["123e4567"],
            Code.INVALID_UUID,
        ),
        (
            {"type": "integer"},
            ["5", " -3 ", "+7", "007"],
            ["5.0", "five", "1e3", "99999999999999999999"],
            Code.NOT_INTEGER,
        ),
        (
            {"type": "number"},
            ["1.5", " -2", ".5", "1e3"],
            ["nan", "inf", "1,5", "1e999"],
            Code.NOT_NUMBER,
        ),
        ({"type": "boolean"}, ["true", "0", " FALSE "], ["yes", "T"], Code.NOT_BOOLEAN),
        (
            {"type": "date"},
            ["1990-02-03", "2024-02-29", " 2000-01-01 "],
            ["1990-02-30", "2023-02-29", "1990-2-3", "+1990-02-03", "03/02/1990"],
            Code.INVALID_DATE,
        ),
        (
            {"type": "date", "format": "%d/%m/%Y"},
            ["03/02/1990"],
            ["1990-02-03", "31/02/1990"],
            Code.INVALID_DATE,
        ),
        (
            {"type": "integer", "constraints": {"minimum": 0}},
            ["0", "12"],
            ["-1"],
            Code.BELOW_MINIMUM,
        ),
        (
            {"type": "number", "constraints": {"maximum": 2.5}},
            ["2.5", "-9"],
            ["2.6"],
            Code.ABOVE_MAXIMUM,
        ),
        (
            {"type": "date", "constraints": {"minimum": "2000-01-01"}},
            ["2000-01-01"],
            ["1999-12-31"],
            Code.BELOW_MINIMUM,
        ),
        (
            {"type": "integer", "constraints": {"enum": [1, 2]}},
            ["1", "02"],
            ["3"],
            Code.NOT_IN_ENUM,
        ),
    ],
)
def test_each_rule_passes_good_values_and_fails_bad_ones(
    field: dict[str, Any], good: list[str], bad: list[str], code: Code
) -> None:
    """Good values pass; each bad value fails its row with the rule's code."""
    report = one_field(field, *good, *bad)
    bad_rows = range(2 + len(good), 2 + len(good) + len(bad))
    assert codes_by_row(report) == {row: [code.value] for row in bad_rows}


def test_empty_optional_cells_pass_every_rule() -> None:
    """An empty cell in an optional column breaks no type or format rule."""
    schema = small_schema(
        {"name": "a", "constraints": {"required": True}},
        {"name": "n", "type": "integer", "constraints": {"minimum": 1}},
        {"name": "d", "type": "date"},
        {"name": "e", "format": "email", "constraints": {"pattern": "x.*"}},
    )
    report = check('a,n,d,e\n1,,,\n2,"",  ,\n', schema)
    assert (report.rows_valid, failures(report)) == (2, [])


def test_custom_missing_values_count_as_empty() -> None:
    """Values listed in missingValues are treated like empty cells."""
    report = one_field({"constraints": {"required": True}}, "N/A", "x", missingValues=["", "N/A"])
    assert failures(report) == [(2, "v", "required")]


def test_repeated_keys_fail_every_row_and_name_the_others() -> None:
    """Rows sharing a primary key all fail, each naming the rest."""
    schema = small_schema(
        {"name": "id", "constraints": {"required": True}, "possibleNames": ["ID"]},
        {"name": "n"},
        primaryKey="id",
    )
    report = check("ID,n\nA1,1\nB2,2\nA1 ,3\nC3,4\n A1,5\nB2,6\n", schema)
    assert report.failures.rows() == [
        (2, "id", "duplicate_key", '"ID" repeats the value of rows 4, 6'),
        (3, "id", "duplicate_key", '"ID" repeats the value of row 7'),
        (4, "id", "duplicate_key", '"ID" repeats the value of rows 2, 6'),
        (6, "id", "duplicate_key", '"ID" repeats the value of rows 2, 4'),
        (7, "id", "duplicate_key", '"ID" repeats the value of row 3'),
    ]


def test_a_large_group_of_repeats_names_a_few_and_counts_the_rest() -> None:
    """Messages stay short when many rows share a key."""
    report = one_field({"constraints": {"unique": True}}, *["same"] * 9)
    messages = report.failures["message"].to_list()
    assert messages == [
        '"v" repeats the value of rows 3, 4, 5, 6, 7 and 3 more',
        '"v" repeats the value of rows 2, 4, 5, 6, 7 and 3 more',
        '"v" repeats the value of rows 2, 3, 5, 6, 7 and 3 more',
        '"v" repeats the value of rows 2, 3, 4, 6, 7 and 3 more',
        '"v" repeats the value of rows 2, 3, 4, 5, 7 and 3 more',
        '"v" repeats the value of rows 2, 3, 4, 5, 6 and 3 more',
        '"v" repeats the value of rows 2, 3, 4, 5, 6 and 3 more',
        '"v" repeats the value of rows 2, 3, 4, 5, 6 and 3 more',
        '"v" repeats the value of rows 2, 3, 4, 5, 6 and 3 more',
    ]
    assert report.failures["code"].unique().to_list() == ["duplicate_value"]


def test_composite_keys_compare_all_their_columns() -> None:
    """A two-column key repeats only when both columns repeat."""
    schema = small_schema(
        {"name": "a", "constraints": {"required": True}},
        {"name": "b", "constraints": {"required": True}},
        primaryKey=["a", "b"],
    )
    report = check("a,b\n1,x\n1,y\n1,x\n", schema)
    assert failures(report) == [(2, "a,b", "duplicate_key"), (4, "a,b", "duplicate_key")]


def test_missing_keys_are_not_repeats_of_each_other() -> None:
    """Two rows with an empty key fail 'required', not 'duplicate'."""
    schema = small_schema(
        {"name": "id", "constraints": {"required": True}}, {"name": "n"}, primaryKey="id"
    )
    report = check('id,n\n,1\n" ",2\n"",3\nx,4\n', schema)
    assert failures(report) == [(2, "id", "required"), (3, "id", "required"), (4, "id", "required")]


def test_row_numbers_match_the_spreadsheet() -> None:
    """Header is row 1; a multi-line record counts once; blank lines count."""
    schema = small_schema({"name": "a"}, {"name": "b", "type": "integer"})
    report = check('a,b\n"x\ny",1\n\nz,bad\n', schema)
    assert failures(report) == [(4, "b", "not_integer")]
    assert (report.rows_total, report.rows_blank) == (2, 1)


def test_ragged_rows_fail_with_their_field_count_only() -> None:
    """A short or long row fails once, for its shape, not for each column."""
    schema = small_schema({"name": "a"}, {"name": "b", "type": "integer"}, {"name": "c"})
    report = check("a,b,c\n1,x\n2,3,4,5\n", schema)
    assert report.failures.rows() == [
        (2, None, "too_few_fields", "This row has 2 values but the header names 3 columns."),
        (
            3,
            None,
            "too_many_fields",
            (
                "This row has 4 values but the header names 3 columns: the values after the "
                "last column would be lost."
            ),
        ),
    ]


def test_header_problems_fail_every_row_with_one_reason() -> None:
    """A file-level problem fails all rows and lists no row failures."""
    schema = small_schema({"name": "a", "constraints": {"required": True}})
    report = check("b\n1\n2\n\n", schema)
    assert [p.code for p in report.file_errors] == [Code.HEADER_UNKNOWN, Code.HEADER_REQUIRED]
    assert (report.rows_total, report.rows_valid, report.rows_failed) == (2, 0, 2)
    assert report.failures.is_empty()


def test_an_unnamed_column_with_values_fails_the_file() -> None:
    """Data under an empty header cannot be placed, so the file fails."""
    schema = small_schema({"name": "a"})
    report = check("a,\n1,x\n2,\n", schema)
    assert [(p.code, p.message) for p in report.file_errors] == [
        (
            Code.HEADER_UNNAMED,
            "Column B has no header but holds values in 1 rows: give it a header or delete it.",
        )
    ]


def test_an_empty_unnamed_column_is_ignored() -> None:
    """A trailing empty column from a spreadsheet export is harmless."""
    schema = small_schema({"name": "a"})
    report = check("a,\n1,\n2,\n", schema)
    assert (report.file_errors, report.rows_valid) == ((), 2)


def test_an_unreadable_file_reports_its_reason_and_no_rows() -> None:
    """A binary file is a file-level failure with nothing counted."""
    report = validate(read_table(b"PK\x03\x04rest"), small_schema({"name": "a"}))
    assert [p.code for p in report.file_errors] == [Code.FILE_BINARY]
    assert (report.rows_total, report.rows_failed, report.ok) == (0, 0, False)


def test_api_rows_are_clean_normal_and_defaulted(opscom: Schema) -> None:
    """Valid rows come out trimmed, typed to normal form, with defaults applied."""
    report = check(
        "Unique ID,First Name,User Type ID,Date of Birth,Email,Login Source\n"
        "A-1, Ann ,007,1990-02-03,a@b.co,\n"
        "A-2,Bo,,,,LDAP\n"
        "A-3,Cy,x,,,\n",
        opscom,
    )
    assert report.api_rows().rows(named=True) == [
        {
            "row": 2,
            "unique_id": "A-1",
            "login_source": "OPSCOM",
            "first_name": "Ann",
            "email": "a@b.co",
            "user_type_id": "7",
            "date_of_birth": "1990-02-03",
        },
        {
            "row": 3,
            "unique_id": "A-2",
            "login_source": "LDAP",
            "first_name": "Bo",
            "email": None,
            "user_type_id": None,
            "date_of_birth": None,
        },
    ]


def test_api_rows_convert_custom_dates_and_booleans() -> None:
    """A day-first date becomes ISO; yes/no words become true/false."""
    schema = small_schema(
        {"name": "d", "type": "date", "format": "%d/%m/%Y"},
        {"name": "b", "type": "boolean", "trueValues": ["yes"], "falseValues": ["no"]},
    )
    report = check("d,b\n03/02/1990,yes\n,no\n", schema)
    assert report.api_rows().drop("row").rows() == [("1990-02-03", "true"), (None, "false")]


def test_spreadsheet_dates_are_accepted_where_the_schema_says_and_sent_as_iso() -> None:
    """DateFormats ["%m/%d/%Y"] beside the default: 3/17/2004 and 2004-03-17 both pass."""
    schema = small_schema(
        {"name": "id"},
        {"name": "dob", "type": "date", "dateFormats": ["%m/%d/%Y"]},
    )
    report = check("id,dob\nA,3/17/2004\nB,2004-03-18\nC,17/3/2004\n", schema)
    assert failures(report) == [(4, "dob", "invalid_date")]
    assert report.failures["message"].to_list() == [
        '"dob" must be a real date written like 1990-12-31 or 12/31/1990'
    ]
    assert report.api_rows().drop("row").rows() == [("A", "2004-03-17"), ("B", "2004-03-18")]


def test_the_shipped_schema_stays_strict_about_dates(opscom: Schema) -> None:
    """US spreadsheet dates fail the shipped schema, which accepts only YYYY-MM-DD."""
    report = check("unique_id,login_source,date_of_birth\nA,OPSCOM,3/17/2004\n", opscom)
    assert failures(report) == [(2, "date_of_birth", "invalid_date")]


def test_counts_always_add_up(opscom: Schema) -> None:
    """rows_total is valid plus failed, and failures name only failed rows."""
    report = check("unique_id,email\nA,a@b.co\nB,bad\n\nA,c@d.ef\n,\nC\nD,d@e.fg\n", opscom)
    assert (report.rows_total, report.rows_valid, report.rows_blank) == (5, 1, 2)
    assert report.rows_failed == report.failures["row"].n_unique() == 4


def _reference(report: ValidationReport) -> set[tuple[int, str | None, str]]:
    """The failures found by applying every exact rule to every row, unscreened."""
    assert report.table is not None
    frame = report.table.frame.with_row_index("i")
    blank, ragged = report.table.blank, set(report.table.ragged["record"].to_list())
    found: set[tuple[int, str | None, str]] = set()
    for col in report.columns:
        if col.field is None:
            continue
        field = report.schema.field(col.field)
        value = rules.clean(pl.col(f"c{col.index}"), report.schema.missing_values)
        for rule in rules.field_checks(
            field, label=col.header, missing_values=report.schema.missing_values
        ):
            bad = frame.filter(rule.bad(value).fill_null(value=False))["i"].to_list()
            found |= {
                (i + 2, field.name, rule.code.value)
                for i in bad
                if not blank[i] and i not in ragged
            }
        if field.constraints.unique:
            clean = frame.select("i", value.alias("v")).to_dicts()
            seen: dict[str, list[int]] = {}
            for row in clean:
                if row["v"] is not None and not blank[row["i"]] and row["i"] not in ragged:
                    seen.setdefault(row["v"], []).append(row["i"])
            found |= {
                (i + 2, field.name, "duplicate_value")
                for rows in seen.values()
                if len(rows) > 1
                for i in rows
            }
    found |= {
        (r + 2, None, c)
        for r, c in [
            (r, "too_few_fields" if n < len(report.table.headers) else "too_many_fields")
            for r, n in report.table.ragged.iter_rows()
        ]
        if not blank[r]
    }
    return found


_SOUNDNESS_SCHEMA = small_schema(
    {"name": "s", "constraints": {"required": True, "maxLength": 3, "unique": True}},
    {"name": "p", "constraints": {"pattern": "[a-c]+", "minLength": 2}},
    {"name": "q", "constraints": {"pattern": "a b|c"}},
    {"name": "i", "type": "integer", "constraints": {"minimum": 0, "maximum": 50}},
    {"name": "n", "type": "number", "constraints": {"maximum": 2}},
    {"name": "d", "type": "date", "constraints": {"minimum": "2000-01-01"}},
    {"name": "e", "format": "email", "constraints": {"enum": ["a@b.co", "é@x.org"]}},
    {"name": "b", "type": "boolean"},
    missingValues=["", "-"],
)
_CELLS = st.sampled_from(
    ["", " ", "-", " - ", "a", "ab", " ab", "abc", "abcd", "é", "éé ", "a b", "c", "0", "-1", " 7",
     "51", "1e2", "2.5", "1.0", "nan", "2000-01-01", " 2024-02-29", "2023-02-29", "1999-12-31",
     "2000-1-1", "a@b.co", " é@x.org", "a@b", "true", " 0", "yes", "\u00a0ab\u00a0"]
)  # fmt: skip


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.lists(_CELLS, min_size=8, max_size=8), max_size=12))
def test_screens_never_hide_a_failure(rows: list[list[str]]) -> None:
    """Screened validation finds exactly what checking every row exactly finds."""
    body = "".join(",".join(f'"{c}"' for c in row) + "\n" for row in rows)
    report = check("s,p,q,i,n,d,e,b\n" + body, _SOUNDNESS_SCHEMA)
    assert set(failures(report)) == _reference(report)
    assert report.rows_total == report.rows_valid + report.rows_failed


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=200))
def test_every_row_is_accounted_for_whatever_the_bytes(data: bytes) -> None:
    """Arbitrary input never crashes validation and the counts always add up."""
    schema = small_schema(
        {"name": "a", "constraints": {"required": True, "unique": True}},
        {"name": "b", "type": "date"},
    )
    report = validate(read_table(b"a,b\n" + data), schema)
    assert report.rows_total == report.rows_valid + report.rows_failed
    if not report.file_errors:
        assert report.rows_failed == report.failures["row"].n_unique()
        assert report.api_rows().height == report.rows_valid


def test_dates_before_year_one_are_not_dates() -> None:
    """Year 0000 parses in chrono but is not a date a person was born on."""
    assert dt.MINYEAR == 1
    report = one_field({"type": "date"}, "0000-01-01", "0001-01-01")
    assert failures(report) == [(2, "v", "invalid_date")]
