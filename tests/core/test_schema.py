"""The header schema format: what loads, and how each mistake is reported."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.support import ROOT
from watcher.core.schema import Constraints, Field
from watcher.core.schema_parser import load_schema, parse_schema
from watcher.errors import SchemaError

if TYPE_CHECKING:
    from pathlib import Path


def problems_of(document: Any) -> tuple[str, ...]:
    """The problems parse_schema reports for ``document``."""
    with pytest.raises(SchemaError) as caught:
        parse_schema(json.dumps(document))
    return caught.value.problems


@pytest.mark.parametrize("path", sorted((ROOT / "schema").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_schema_loads(path: Path) -> None:
    """Each schema in schema/ passes the loader's checks."""
    schema = load_schema(path)
    assert schema.fields


def test_opscom_schema_covers_the_push_api(opscom: Any) -> None:
    """The shipped schema names every Push API attribute and the documented limits."""
    names = {f.name for f in opscom.fields}
    assert names == {
        "unique_id", "login_source", "first_name", "last_name", "user_name", "email",
        "street", "city", "province", "postal_code", "street2", "city2", "province2",
        "postal_code2", "phone_cell", "user_type_id", "employ_no", "employee_phone",
        "student_no", "student_phone", "driver_licence_num", "date_of_birth",
        "locker_user_type_id", "driver_licence_prov",
    }  # fmt: skip
    assert opscom.primary_key == ("unique_id",)
    assert opscom.field("unique_id").constraints.max_length == 50
    assert opscom.field("unique_id").required
    assert opscom.field("login_source").default == "OPSCOM"
    assert opscom.field("login_source").constraints.max_length == 20
    assert opscom.field("email").format == "email"
    assert opscom.field("email").constraints.max_length == 100
    assert opscom.field("date_of_birth").type == "date"
    assert opscom.field("user_type_id").type == "integer"
    assert opscom.field("locker_user_type_id").type == "integer"


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("province", {"province", "state"}),
        ("postal_code", {"postal_code", "zip"}),
        ("province2", {"province2", "state2"}),
        ("postal_code2", {"postal_code2", "zip2"}),
        ("first_name", {"first_name", "First Name"}),
    ],
)
def test_opscom_possible_names_pair_spellings(opscom: Any, field: str, names: set[str]) -> None:
    """The API's paired spellings and human headers all name one attribute."""
    assert names <= set(opscom.field(field).possible_names)


def test_a_minimal_schema_gets_table_schema_defaults() -> None:
    """A field with only a name is a text field matched by its own name."""
    schema = parse_schema('{"fields": [{"name": "email"}]}')
    assert schema.fields == (Field(name="email", possible_names=("email",)),)
    assert schema.missing_values == ("",)
    assert schema.header_matching == "exact"
    assert schema.unknown_columns == "fail"


def test_constraints_are_parsed_into_values() -> None:
    """Every supported constraint becomes a typed value."""
    schema = parse_schema(
        json.dumps(
            {
                "fields": [
                    {
                        "name": "born",
                        "type": "date",
                        "constraints": {
                            "required": True,
                            "minimum": "1900-01-01",
                            "maximum": "2020-12-31",
                        },
                    },
                    {
                        "name": "code",
                        "constraints": {
                            "unique": True,
                            "minLength": 2,
                            "maxLength": 5,
                            "pattern": "[A-Z]+",
                            "enum": ["AB", "CD"],
                        },
                    },
                ]
            }
        )
    )
    assert schema.field("born").constraints == Constraints(
        required=True, minimum=dt.date(1900, 1, 1), maximum=dt.date(2020, 12, 31)
    )
    assert schema.field("code").constraints == Constraints(
        unique=True, min_length=2, max_length=5, pattern="[A-Z]+", enum=("AB", "CD")
    )


def test_the_digest_identifies_the_exact_text() -> None:
    """Two texts of one schema get different digests; one text always the same."""
    a = parse_schema('{"fields": [{"name": "a"}]}')
    b = parse_schema('{"fields": [{"name": "a"}] }')
    assert a.digest == parse_schema('{"fields": [{"name": "a"}]}').digest
    assert a.digest != b.digest
    assert a.label == a.digest[:12]


def test_the_version_is_the_label_when_given() -> None:
    """A schema's version names it in logs and status."""
    assert parse_schema('{"version": "7", "fields": [{"name": "a"}]}').label == "7"


def test_invalid_json_is_reported() -> None:
    """Text that is not JSON fails with the parser's position."""
    with pytest.raises(SchemaError, match="not valid JSON"):
        parse_schema("{fields: [")


def test_missing_file_is_reported(tmp_path: Path) -> None:
    """A schema path that does not exist fails with a clear reason."""
    with pytest.raises(SchemaError, match="cannot read the file"):
        load_schema(tmp_path / "none.json")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([], "the schema must be a JSON object with a 'fields' list"),
        ({"fields": []}, "fields: must be a non-empty list of field objects"),
        ({"fields": ["x"]}, "fields[0]: must be an object with at least a 'name'"),
        ({"fields": [{"title": "x"}]}, "fields[0]: needs a non-empty 'name' (the API attribute)"),
        (
            {"fields": [{"name": "a", "possibleNamez": ["a"]}]},
            "fields[0] 'a'.possibleNamez: is not a known property (did you mean 'possibleNames'?)",
        ),
        (
            {"fields": [{"name": "a", "type": "geopoint"}]},
            "fields[0] 'a'.type: 'geopoint' is not supported; use 'string'",
        ),
        (
            {"fields": [{"name": "a", "type": "text"}]},
            (
                "fields[0] 'a'.type: must be one of string, integer, number, boolean, date, any "
                "(got 'text')"
            ),
        ),
        (
            {"fields": [{"name": "a", "format": "phone"}]},
            "fields[0] 'a'.format: text fields accept default, email, uri, uuid (got 'phone')",
        ),
        (
            {"fields": [{"name": "a", "type": "date", "format": "%Y"}]},
            "fields[0] 'a'.format: '%Y' is not a usable date pattern",
        ),
        (
            {"fields": [{"name": "a", "type": "integer", "format": "x"}]},
            "fields[0] 'a'.format: integer fields take only 'default'",
        ),
        (
            {"fields": [{"name": "a", "constraints": {"maxLength": "ten"}}]},
            "fields[0] 'a'.constraints.maxLength: must be a whole number of characters (got 'ten')",
        ),
        (
            {"fields": [{"name": "a", "constraints": {"minLength": 5, "maxLength": 2}}]},
            "fields[0] 'a'.constraints: minLength is larger than maxLength",
        ),
        (
            {"fields": [{"name": "a", "type": "integer", "constraints": {"maxLength": 2}}]},
            "fields[0] 'a'.constraints: minLength and maxLength apply to text fields only",
        ),
        (
            {"fields": [{"name": "a", "constraints": {"required": "yes"}}]},
            "fields[0] 'a'.constraints.required: must be true or false (got 'yes')",
        ),
        (
            {"fields": [{"name": "a", "type": "integer", "constraints": {"enum": ["x"]}}]},
            "fields[0] 'a'.constraints.enum: 'x' is not a valid integer",
        ),
        (
            {"fields": [{"name": "a", "constraints": {"minimum": 1}}]},
            "fields[0] 'a'.constraints.minimum: applies to integer, number and date fields only",
        ),
        (
            {"fields": [{"name": "a", "type": "date", "constraints": {"minimum": "1990-02-30"}}]},
            (
                "fields[0] 'a'.constraints.minimum: must be a date written YYYY-MM-DD "
                "(got '1990-02-30')"
            ),
        ),
        (
            {
                "fields": [
                    {"name": "a", "type": "integer", "constraints": {"minimum": 5, "maximum": 1}}
                ]
            },
            "fields[0] 'a'.constraints: minimum is larger than maximum",
        ),
        (
            {"fields": [{"name": "a", "possibleNames": []}]},
            "fields[0] 'a'.possibleNames: must list at least one header",
        ),
        (
            {"fields": [{"name": "a", "possibleNames": [" a"]}]},
            "fields[0] 'a'.possibleNames: ' a' has surrounding spaces or is empty",
        ),
        (
            {"fields": [{"name": "a", "default": 5}]},
            "fields[0] 'a'.default: must be text, as it would appear in a cell",
        ),
        (
            {"fields": [{"name": "a"}], "foreignKeys": []},
            (
                "foreignKeys: is not supported: foreign keys need other tables; the watcher "
                "checks one file"
            ),
        ),
        (
            {"fields": [{"name": "a"}], "headerMatching": "fuzzy"},
            "headerMatching: must be 'exact' or 'caseInsensitive' (got 'fuzzy')",
        ),
        (
            {"fields": [{"name": "a"}], "primaryKey": "b"},
            "primaryKey: 'b' is not a field of this schema",
        ),
        (
            {"fields": [{"name": "a"}], "primaryKey": "a"},
            "primaryKey: 'a' must also be required",
        ),
        (
            {"fields": [{"name": "a"}, {"name": "a"}]},
            "fields[1] 'a': the name is already used by fields[0]",
        ),
        (
            {"fields": [{"name": "a"}, {"name": "b", "possibleNames": ["b", "a"]}]},
            "fields[1] 'b'.possibleNames: 'a' also names field 'a'",
        ),
        (
            {"fields": [{"name": "a", "possibleNames": ["import_error"]}]},
            (
                "fields[0] 'a'.possibleNames: 'import_error' is reserved for the failure "
                "report's own columns"
            ),
        ),
        (
            {"fields": [{"name": "a", "constraints": {"unique": True}, "default": "x"}]},
            "fields[0] 'a'.default: a unique field cannot have a default: every row would share it",
        ),
        (
            {"fields": [{"name": "a", "constraints": {"maxLength": 2}, "default": "xyz"}]},
            (
                "fields[0] 'a'.default: 'xyz' fails the field's own rule: \"a\" must be at most "
                "2 characters long"
            ),
        ),
        (
            {"fields": [{"name": "a", "default": "  "}]},
            "fields[0] 'a'.default: must not be empty: leave it out instead",
        ),
    ],
)
def test_each_mistake_names_its_place(document: Any, expected: str) -> None:
    """A broken schema lists the problem with the field and property it concerns."""
    assert expected in problems_of(document)


def test_an_invalid_pattern_is_refused() -> None:
    """A pattern the regex engine cannot compile is a schema problem."""
    (problem,) = problems_of({"fields": [{"name": "a", "constraints": {"pattern": "[a-"}}]})
    assert problem.startswith(
        "fields[0] 'a'.constraints.pattern: is not a valid regular expression"
    )


def test_all_problems_are_listed_at_once() -> None:
    """One load reports every problem, not just the first."""
    problems = problems_of(
        {
            "fields": [
                {"name": "a", "type": "nope"},
                {"name": "b", "constraints": {"maxLength": -1}},
            ]
        }
    )
    assert len(problems) == 2


def test_case_insensitive_matching_makes_case_variants_collide() -> None:
    """Under case-insensitive matching, 'Email' and 'email' on two fields clash."""
    problems = problems_of(
        {
            "headerMatching": "caseInsensitive",
            "fields": [
                {"name": "a", "possibleNames": ["Email"]},
                {"name": "b", "possibleNames": ["email"]},
            ],
        }
    )
    assert problems == ("fields[1] 'b'.possibleNames: 'email' also names field 'a'",)


def test_extension_properties_may_be_prefixed() -> None:
    """Properties starting with x- are left for other tools."""
    schema = parse_schema('{"x-owner": "ops", "fields": [{"name": "a", "x-note": 1}]}')
    assert schema.fields[0].name == "a"


def test_custom_date_formats_are_accepted() -> None:
    """A day-first date pattern that reads back a full date is accepted."""
    schema = parse_schema('{"fields": [{"name": "d", "type": "date", "format": "%d/%m/%Y"}]}')
    assert schema.field("d").format == "%d/%m/%Y"


def test_date_formats_must_be_usable_date_patterns_on_date_fields() -> None:
    """DateFormats lists patterns for date fields only; each is checked like format."""
    with pytest.raises(SchemaError) as caught:
        parse_schema(
            '{"fields": [{"name": "d", "type": "date", "dateFormats": ["%Y", "soon"]},'
            ' {"name": "s", "dateFormats": ["%d/%m/%Y"]}]}'
        )
    assert caught.value.problems == (
        "fields[0] 'd'.dateFormats: '%Y' is not a usable date pattern",
        "fields[0] 'd'.dateFormats: dates take 'default' (YYYY-MM-DD) or a pattern such as '%d/%m/%Y'",
        "fields[1] 's'.dateFormats: only date fields take dateFormats",
    )


def test_schema_error_lists_problems_in_its_message() -> None:
    """The exception's text names the source and each problem on its own line."""
    error = SchemaError("s.json", ["one", "two"])
    assert str(error) == "s.json:\n  - one\n  - two"
