"""The header schema as values: fields, their rules and header spellings.

A schema says which columns a tenant's CSV files may have, under which header
spellings (``possibleNames``), and which rules each value must follow. This
module is the model only; :mod:`watcher.core.schema_parser` reads and checks
the JSON format (a superset of Frictionless Table Schema, documented in
``schema/README.md``) into it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Literal

__all__ = [
    "DEFAULT_FALSE_VALUES",
    "DEFAULT_TRUE_VALUES",
    "FORMULA_START",
    "RESERVED_COLUMNS",
    "STRING_FORMATS",
    "SUPPORTED_TYPES",
    "Bound",
    "Constraints",
    "Field",
    "FieldType",
    "HeaderMatching",
    "Schema",
    "UnknownColumns",
    "folded",
    "header_key",
]

FieldType = Literal["string", "integer", "number", "boolean", "date", "any"]
HeaderMatching = Literal["exact", "caseInsensitive"]
UnknownColumns = Literal["fail", "ignore"]
Bound = int | float | dt.date

# Column names of the failure CSV that a customer sends back after fixing rows.
# They are never data, so no schema may claim them and the validator skips them.
RESERVED_COLUMNS = (
    "import_row",
    "import_error_code",
    "import_error_field",
    "import_error",
)
# The first characters that make a spreadsheet read a cell as a formula: the
# failure CSV puts an apostrophe before such a cell, and a file sent back with
# our columns has it taken off again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

SUPPORTED_TYPES: tuple[FieldType, ...] = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "any",
)
STRING_FORMATS = ("default", "email", "uri", "uuid")
DEFAULT_TRUE_VALUES = ("true", "True", "TRUE", "1")
DEFAULT_FALSE_VALUES = ("false", "False", "FALSE", "0")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Constraints:
    """The rules one value must follow; ``None`` means the rule is off."""

    required: bool = False
    unique: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    minimum: Bound | None = None
    maximum: Bound | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One API attribute and the header spellings that name it."""

    name: str
    type: FieldType = "string"
    format: str = "default"
    title: str | None = None
    description: str | None = None
    constraints: Constraints = Constraints()
    possible_names: tuple[str, ...] = ()
    default: str | None = None
    pattern_description: str | None = None
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES
    # More date patterns accepted after ``format`` (a spreadsheet's own, say).
    date_formats: tuple[str, ...] = ()

    @property
    def date_patterns(self) -> tuple[str, ...]:
        """Every way a date may be written here, tried in order ("default" is YYYY-MM-DD)."""
        return (self.format, *self.date_formats)

    @property
    def required(self) -> bool:
        """Whether a row needs a value here (its default may supply one)."""
        return self.constraints.required


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """A parsed, checked header schema."""

    fields: tuple[Field, ...]
    primary_key: tuple[str, ...] = ()
    missing_values: tuple[str, ...] = ("",)
    header_matching: HeaderMatching = "exact"
    unknown_columns: UnknownColumns = "fail"
    title: str | None = None
    version: str | None = None
    digest: str = ""

    def field(self, name: str) -> Field:
        """The field called ``name``; a KeyError names the missing field."""
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)

    @property
    def label(self) -> str:
        """A short name for logs and status: the version, else the digest."""
        return self.version or self.digest[:12]


def folded(header: str, *, fold: bool) -> str:
    """``header`` as matching compares it: case-folded when ``fold``."""
    return header.casefold() if fold else header


def header_key(header: str, schema: Schema) -> str:
    """The form of ``header`` that matching compares, per the schema's rule."""
    return folded(header.strip(), fold=schema.header_matching == "caseInsensitive")
