"""Reading header schema files: JSON in, a checked :class:`Schema` out.

Parsing is strict: every problem is collected and reported with the field it
concerns, so an operator fixes a schema in one pass, and a schema that loads
is one the validator can apply without surprises. ``schema/README.md``
documents the format.

This module opens the schema file it is handed, and looks for the shipped
schema beside the package; it writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, cast

from watcher.core import rules
from watcher.core.schema import (
    DEFAULT_FALSE_VALUES,
    DEFAULT_TRUE_VALUES,
    RESERVED_COLUMNS,
    STRING_FORMATS,
    SUPPORTED_TYPES,
    Bound,
    Constraints,
    Field,
    FieldType,
    HeaderMatching,
    Schema,
    UnknownColumns,
    folded,
)
from watcher.errors import SchemaError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["load_schema", "parse_schema", "read_schema_file", "shipped_schema_path"]

_KNOWN_UNSUPPORTED_TYPES = frozenset(
    {
        "object",
        "array",
        "time",
        "datetime",
        "year",
        "yearmonth",
        "duration",
        "geopoint",
        "geojson",
        "list",
    }
)

_SCHEMA_KEYS = frozenset(
    {
        "fields",
        "primaryKey",
        "missingValues",
        "$schema",
        "name",
        "title",
        "description",
        "profile",
        "version",
        "headerMatching",
        "unknownColumns",
    }
)
_SCHEMA_UNSUPPORTED = {
    "foreignKeys": "foreign keys need other tables; the watcher checks one file",
    "fieldsMatch": "use 'unknownColumns' and 'required' constraints instead",
    "uniqueKeys": "mark each field 'unique' or use 'primaryKey'",
}
_FIELD_KEYS = frozenset(
    {
        "name",
        "title",
        "description",
        "example",
        "type",
        "format",
        "constraints",
        "rdfType",
        "trueValues",
        "falseValues",
        "possibleNames",
        "default",
        "patternDescription",
        "dateFormats",
    }
)
_FIELD_UNSUPPORTED = {
    "bareNumber": "numbers must be bare; clean them before upload",
    "decimalChar": "only '.' is accepted as the decimal mark",
    "groupChar": "digit grouping is not accepted",
    "missingValues": "set 'missingValues' once, for the whole schema",
    "categories": "use the 'enum' constraint",
}
_CONSTRAINT_KEYS = frozenset(
    {
        "required",
        "unique",
        "minLength",
        "maxLength",
        "pattern",
        "enum",
        "minimum",
        "maximum",
    }
)


def shipped_schema_path() -> Path:
    """The shipped OPS-COM schema: inside the wheel, or in the source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (
        package / "_schema" / "opscom-users.json",
        package.parent / "schema" / "opscom-users.json",
    ):
        if candidate.is_file():
            return candidate
    return package.parent / "schema" / "opscom-users.json"


def load_schema(path: Path) -> Schema:
    """Read and check the schema file at ``path``.

    Raises:
        SchemaError: the file is missing, not JSON, or breaks the format; the
            error lists every problem found.
    """
    return read_schema_file(path)[1]


def read_schema_file(path: Path) -> tuple[bytes, Schema]:
    """The text of the schema file at ``path`` and the schema it holds.

    Raises:
        SchemaError: as :func:`load_schema`.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise SchemaError(str(path), [f"cannot read the file: {exc.strerror}"]) from exc
    return text, parse_schema(text, source=str(path))


def parse_schema(text: bytes | str, *, source: str = "schema") -> Schema:
    """Parse schema JSON text into a checked :class:`Schema`.

    Raises:
        SchemaError: the text breaks the format; every problem is listed.
    """
    raw = text.encode() if isinstance(text, str) else text
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SchemaError(source, [f"not valid JSON: {exc}"]) from exc
    problems: list[str] = []
    schema = _Parser(problems).schema(document)
    if problems or schema is None:
        raise SchemaError(source, problems)
    return dataclasses.replace(schema, digest=hashlib.sha256(raw).hexdigest())


class _Reader:
    """Reads one value of each kind, noting every problem with where it is."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    def unknown_keys(
        self,
        where: str,
        obj: Mapping[str, object],
        known: frozenset[str],
        unsupported: Mapping[str, str],
    ) -> None:
        for key in obj:
            if key in known:
                continue
            place = f"{where}.{key}" if where else key
            if key in unsupported:
                self.problem(place, f"is not supported: {unsupported[key]}")
            elif key.startswith("x-"):
                continue
            else:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.problem(place, f"is not a known property{hint}")

    def flag(self, where: str, value: object) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.problem(where, f"must be true or false (got {value!r})")
            return False
        return value

    def length(self, where: str, value: object) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(where, f"must be a whole number of characters (got {value!r})")
            return None
        return value

    def string_list(self, where: str, value: object) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(where, "must be a list of strings")
            return None
        items = tuple(cast("list[str]", value))
        seen: set[str] = set()
        for item in items:
            if item in seen:
                self.problem(where, f"'{item}' is listed twice")
            seen.add(item)
        return items

    def optional_text(self, where: str, value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self.problem(where, "must be text")
        return None

    def choice(self, where: str, value: object, options: tuple[str, ...]) -> str:
        if value is None:
            return options[0]
        if value not in options:
            listed = " or ".join(f"'{o}'" for o in options)
            self.problem(where, f"must be {listed} (got {value!r})")
            return options[0]
        return str(value)


class _FieldReader(_Reader):
    """Reads one field: its type, format, constraints and spellings."""

    def field(self, index: int, item: object) -> Field | None:
        where = f"fields[{index}]"
        if not isinstance(item, dict):
            self.problem(where, "must be an object with at least a 'name'")
            return None
        obj = cast("dict[str, object]", item)
        name = obj.get("name")
        if not isinstance(name, str) or not name.strip():
            self.problem(where, "needs a non-empty 'name' (the API attribute)")
            return None
        where = f"fields[{index}] '{name}'"
        before = len(self.problems)
        self.unknown_keys(where, obj, _FIELD_KEYS, _FIELD_UNSUPPORTED)
        ftype = self.field_type(where, obj.get("type", "string"))
        fmt = self.field_format(where, ftype, obj.get("format", "default"))
        more = self.date_formats(where, ftype, obj.get("dateFormats"))
        true_values = self.string_list(f"{where}.trueValues", obj.get("trueValues"))
        false_values = self.string_list(f"{where}.falseValues", obj.get("falseValues"))
        possible = self.string_list(f"{where}.possibleNames", obj.get("possibleNames"))
        if possible is not None and not possible:
            self.problem(f"{where}.possibleNames", "must list at least one header")
        for header in possible or ():
            if header != header.strip() or not header:
                self.problem(
                    f"{where}.possibleNames",
                    f"'{header}' has surrounding spaces or is empty",
                )
        default = obj.get("default")
        if default is not None and not isinstance(default, str):
            self.problem(f"{where}.default", "must be text, as it would appear in a cell")
            default = None
        field = Field(
            name=name,
            type=ftype,
            format=fmt,
            title=self.optional_text(f"{where}.title", obj.get("title")),
            description=self.optional_text(f"{where}.description", obj.get("description")),
            constraints=self.constraints(where, ftype, obj.get("constraints")),
            possible_names=possible or (name,),
            default=default,
            pattern_description=self.optional_text(
                f"{where}.patternDescription", obj.get("patternDescription")
            ),
            true_values=true_values or DEFAULT_TRUE_VALUES,
            false_values=false_values or DEFAULT_FALSE_VALUES,
            date_formats=more,
        )
        if len(self.problems) > before:
            return None
        for problem in rules.default_problems(field):
            self.problem(f"{where}.default", problem)
        return field

    def field_type(self, where: str, value: object) -> FieldType:
        for supported in SUPPORTED_TYPES:
            if value == supported:
                return supported
        if value in _KNOWN_UNSUPPORTED_TYPES:
            self.problem(f"{where}.type", f"'{value}' is not supported; use 'string'")
        else:
            self.problem(
                f"{where}.type",
                f"must be one of {', '.join(SUPPORTED_TYPES)} (got {value!r})",
            )
        return "string"

    def date_formats(self, where: str, ftype: FieldType, value: object) -> tuple[str, ...]:
        if value is None:
            return ()
        patterns = self.string_list(f"{where}.dateFormats", value)
        if ftype != "date":
            self.problem(f"{where}.dateFormats", "only date fields take dateFormats")
            return ()
        for pattern in patterns or ():
            self.field_format(where, ftype, pattern, key="dateFormats")
        return patterns or ()

    def field_format(
        self, where: str, ftype: FieldType, value: object, *, key: str = "format"
    ) -> str:
        if not isinstance(value, str) or not value:
            self.problem(f"{where}.{key}", "must be a non-empty string")
            return "default"
        if ftype == "string" and value not in STRING_FORMATS:
            self.problem(
                f"{where}.{key}",
                f"text fields accept {', '.join(STRING_FORMATS)} (got '{value}')",
            )
        elif ftype == "date" and value != "default":
            if value == "any" or "%" not in value:
                self.problem(
                    f"{where}.{key}",
                    "dates take 'default' (YYYY-MM-DD) or a pattern such as '%d/%m/%Y'",
                )
            elif not rules.date_format_is_valid(value):
                self.problem(f"{where}.{key}", f"'{value}' is not a usable date pattern")
        elif ftype not in ("string", "date") and value != "default":
            self.problem(f"{where}.{key}", f"{ftype} fields take only 'default'")
        return value

    def constraints(self, where: str, ftype: FieldType, value: object) -> Constraints:
        if value is None:
            return Constraints()
        where = f"{where}.constraints"
        if not isinstance(value, dict):
            self.problem(where, "must be an object")
            return Constraints()
        obj = cast("dict[str, object]", value)
        self.unknown_keys(where, obj, _CONSTRAINT_KEYS, {})
        min_length = self.length(f"{where}.minLength", obj.get("minLength"))
        max_length = self.length(f"{where}.maxLength", obj.get("maxLength"))
        if min_length is not None and max_length is not None and min_length > max_length:
            self.problem(where, "minLength is larger than maxLength")
        if (min_length is not None or max_length is not None) and ftype not in (
            "string",
            "any",
        ):
            self.problem(where, "minLength and maxLength apply to text fields only")
        pattern = obj.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern:
                self.problem(f"{where}.pattern", "must be a non-empty regular expression")
                pattern = None
            elif (error := rules.pattern_error(pattern)) is not None:
                self.problem(f"{where}.pattern", error)
                pattern = None
        minimum = self.bound(f"{where}.minimum", ftype, obj.get("minimum"))
        maximum = self.bound(f"{where}.maximum", ftype, obj.get("maximum"))
        if minimum is not None and maximum is not None and minimum > maximum:  # type: ignore[operator]
            self.problem(where, "minimum is larger than maximum")
        return Constraints(
            required=self.flag(f"{where}.required", obj.get("required")),
            unique=self.flag(f"{where}.unique", obj.get("unique")),
            min_length=min_length,
            max_length=max_length,
            pattern=pattern,
            enum=self.enum(f"{where}.enum", ftype, obj.get("enum")),
            minimum=minimum,
            maximum=maximum,
        )

    def bound(self, where: str, ftype: FieldType, value: object) -> Bound | None:
        if value is None:
            return None
        if ftype == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if ftype == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if ftype == "date" and isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                self.problem(where, f"must be a date written YYYY-MM-DD (got '{value}')")
                return None
        if ftype in ("integer", "number", "date"):
            self.problem(where, f"must be a {ftype} (got {value!r})")
        else:
            self.problem(where, "applies to integer, number and date fields only")
        return None

    def enum(self, where: str, ftype: FieldType, value: object) -> tuple[str, ...] | None:
        if value is None:
            return None
        if not isinstance(value, list) or not value:
            self.problem(where, "must be a non-empty list")
            return None
        items: list[str] = []
        for item in cast("list[object]", value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.problem(where, f"values must be text or numbers (got {item!r})")
                continue
            text = str(item)
            if text != text.strip() or not text:
                self.problem(where, f"'{text}' has surrounding spaces or is empty")
                continue
            if (problem := rules.value_type_problem(ftype, text)) is not None:
                self.problem(where, f"'{text}' {problem}")
                continue
            items.append(text)
        return tuple(items)


class _Parser(_FieldReader):
    """Turns decoded JSON into the model, collecting problems as it goes."""

    def schema(self, document: object) -> Schema | None:
        if not isinstance(document, dict):
            self.problem("", "the schema must be a JSON object with a 'fields' list")
            return None
        doc = cast("dict[str, object]", document)
        self.unknown_keys("", doc, _SCHEMA_KEYS, _SCHEMA_UNSUPPORTED)
        raw_fields = doc.get("fields")
        if not isinstance(raw_fields, list) or not raw_fields:
            self.problem("fields", "must be a non-empty list of field objects")
            return None
        fields = [self.field(i, item) for i, item in enumerate(raw_fields)]
        good = tuple(f for f in fields if f is not None)
        missing_values = self.string_list("missingValues", doc.get("missingValues"))
        schema = Schema(
            fields=good,
            primary_key=self.primary_key(doc.get("primaryKey"), good),
            missing_values=("",) if missing_values is None else missing_values,
            header_matching=cast(
                "HeaderMatching",
                self.choice(
                    "headerMatching",
                    doc.get("headerMatching"),
                    ("exact", "caseInsensitive"),
                ),
            ),
            unknown_columns=cast(
                "UnknownColumns",
                self.choice("unknownColumns", doc.get("unknownColumns"), ("fail", "ignore")),
            ),
            title=self.optional_text("title", doc.get("title")),
            version=self.optional_text("version", doc.get("version")),
        )
        if len(good) == len(fields):
            self.cross_field(schema)
        return schema

    def primary_key(self, value: object, fields: tuple[Field, ...]) -> tuple[str, ...]:
        if value is None:
            return ()
        names = (value,) if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not names:
            self.problem("primaryKey", "must be a field name or a list of field names")
            return ()
        known = {f.name for f in fields}
        keys: list[str] = []
        for name in cast("list[object]", list(names)):
            if not isinstance(name, str) or name not in known:
                self.problem("primaryKey", f"{name!r} is not a field of this schema")
            else:
                keys.append(name)
        return tuple(keys)

    def cross_field(self, schema: Schema) -> None:
        names: dict[str, int] = {}
        claims: dict[str, str] = {}
        fold = schema.header_matching == "caseInsensitive"
        reserved = {folded(r, fold=True) for r in RESERVED_COLUMNS}
        for index, field in enumerate(schema.fields):
            if field.name in names:
                self.problem(
                    f"fields[{index}] '{field.name}'",
                    f"the name is already used by fields[{names[field.name]}]",
                )
            names[field.name] = index
            for header in field.possible_names:
                key = folded(header, fold=fold)
                if folded(header, fold=True) in reserved:
                    self.problem(
                        f"fields[{index}] '{field.name}'.possibleNames",
                        f"'{header}' is reserved for the failure report's own columns",
                    )
                other = claims.get(key)
                if other is not None and other != field.name:
                    self.problem(
                        f"fields[{index}] '{field.name}'.possibleNames",
                        f"'{header}' also names field '{other}'",
                    )
                claims[key] = field.name
            if field.default is not None and (
                field.constraints.unique or field.name in schema.primary_key
            ):
                self.problem(
                    f"fields[{index}] '{field.name}'.default",
                    "a unique field cannot have a default: every row would share it",
                )
        for name in schema.primary_key:
            field = schema.field(name)
            if not field.required:
                self.problem("primaryKey", f"'{name}' must also be required")
