"""Polars expressions for every rule a schema field can state.

Each rule is a :class:`Check`: an exact test on the *clean* value (surrounding
whitespace stripped, missing values turned into null) and, where one exists, a
cheap *screen* on the raw text. Validation runs the screens over the whole file
and the exact tests only over the rows some screen flagged, which is what keeps
a million-row file close to the cost of reading it.

The screens are sound together, not one by one: for every row, if some exact
test fails then some screen is true. Each type screen flags any non-empty raw
value that has surrounding whitespace (the raw text fails the type's strict
pattern), so the bound screens may compare the raw text directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import polars as pl

from watcher.core.codes import Code
from watcher.core.schema import Field, FieldType

__all__ = [
    "EMAIL_PATTERN",
    "ISO_DATE_FORMAT",
    "ISO_DATE_PATTERN",
    "NUMBER_PATTERN",
    "URI_PATTERN",
    "UUID_PATTERN",
    "Check",
    "Rule",
    "api_text",
    "clean",
    "date_format_is_valid",
    "default_problems",
    "field_checks",
    "pattern_error",
    "typed",
    "value_type_problem",
]

Rule = Callable[[pl.Expr], pl.Expr]

# Deliberately practical rather than RFC 5322: one @, no spaces, a dotted domain.
# Non-ASCII letters are allowed on both sides (internationalised addresses).
EMAIL_PATTERN = r"^[^\s@\"(),:;<>\[\]\\]+@[^\s@\"(),:;<>\[\]\\.]+(?:\.[^\s@\"(),:;<>\[\]\\.]+)+$"
URI_PATTERN = r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$"
UUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Every month-day that exists in every year: 29 February is left out, so a
# screen built on it flags that day in leap years too, and phase two decides.
_ISO_DATE_EVERY_YEAR = (
    r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))$"
)
# Characters with which a pattern cannot match whitespace: no literal space,
# no '.', no negated class, no escapes other than the few listed below.
_NO_WHITESPACE_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_[]{}()+*?|,:@#/'=&%!~<>;"
)
_NO_WHITESPACE_ESCAPES = frozenset("dw.-+*?()[]{}|/^$")
ISO_DATE_FORMAT = "%Y-%m-%d"
_ENUM_SHOWN = 10


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One rule of one field: what fails it, and how to say so."""

    code: Code
    message: str
    bad: Rule
    screen: Rule | None = None


def clean(raw: pl.Expr, missing_values: tuple[str, ...]) -> pl.Expr:
    """The value validation and import see: stripped, with missing values as null."""
    stripped = raw.str.strip_chars()
    if missing_values == ("",):
        return pl.when(stripped == "").then(None).otherwise(stripped)
    return pl.when(stripped.is_in(missing_values)).then(None).otherwise(stripped)


def _present(raw: pl.Expr) -> pl.Expr:
    """Cheap test for a raw cell holding something (it may still be blank)."""
    return raw.is_not_null() & (raw != "")


def _matches(value: pl.Expr, pattern: str) -> pl.Expr:
    return value.str.contains(pattern)


def typed(field: Field, value: pl.Expr) -> pl.Expr:
    """The value as its schema type (null where it does not parse)."""
    match field.type:
        case "integer":
            return value.cast(pl.Int64, strict=False)
        case "number":
            return (
                pl.when(_matches(value, NUMBER_PATTERN))
                .then(value.cast(pl.Float64, strict=False))
                .otherwise(None)
            )
        case "date":
            return _parse_dates(value, field.date_patterns)
        case "boolean":
            return (
                pl.when(value.is_in(field.true_values))
                .then(pl.lit(value=True))
                .when(value.is_in(field.false_values))
                .then(pl.lit(value=False))
                .otherwise(None)
            )
        case _:
            return value


def api_text(field: Field, value: pl.Expr) -> pl.Expr:
    """The clean value in the normal form the API receives."""
    match field.type:
        case "integer":
            return value.cast(pl.Int64, strict=False).cast(pl.String)
        case "date":
            return _parse_dates(value, field.date_patterns).dt.to_string(ISO_DATE_FORMAT)
        case "boolean":
            return (
                pl.when(value.is_in(field.true_values))
                .then(pl.lit("true"))
                .when(value.is_in(field.false_values))
                .then(pl.lit("false"))
                .otherwise(None)
            )
        case _:
            return value


def _parse_dates(value: pl.Expr, patterns: tuple[str, ...]) -> pl.Expr:
    """The date ``value`` is in the first of ``patterns`` that reads it, else null."""
    if len(patterns) == 1:
        return _parse_date(value, patterns[0])
    return pl.coalesce([_parse_date(value, fmt) for fmt in patterns])


def _parse_date(value: pl.Expr, fmt: str) -> pl.Expr:
    if fmt == "default":
        # chrono alone accepts "1990-2-3", "+1990-02-03" and a leading space.
        parsed = (
            pl.when(_matches(value, ISO_DATE_PATTERN))
            .then(value.str.to_date(ISO_DATE_FORMAT, strict=False))
            .otherwise(None)
        )
    else:
        parsed = value.str.to_date(fmt, strict=False)
    # chrono also knows a year 0, which no calendar a person uses has.
    return pl.when(parsed.dt.year() >= 1).then(parsed).otherwise(None)


def _date_example(fmt: str) -> str:
    """A sample date in ``fmt``, for messages a customer can follow."""
    return dt.date(1990, 12, 31).strftime(ISO_DATE_FORMAT if fmt == "default" else fmt)


def field_checks(field: Field, *, label: str, missing_values: tuple[str, ...]) -> tuple[Check, ...]:
    """Every per-row check ``field`` states, worded with the file's header ``label``."""
    name = f'"{label}"'
    checks: list[Check] = []
    c = field.constraints
    type_check = _type_check(field, name)
    if c.required and field.default is None:
        checks.append(
            Check(
                code=Code.REQUIRED,
                message=f"{name} is empty, but every row needs a value",
                bad=lambda v: v.is_null(),
                screen=_required_screen(field, type_check, missing_values),
            )
        )
    if type_check is not None:
        checks.append(type_check)
    if c.max_length is not None:
        most = c.max_length
        checks.append(
            Check(
                code=Code.TOO_LONG,
                message=f"{name} must be at most {most} characters long",
                bad=lambda v: v.str.len_chars() > most,
                # Bytes are never fewer than characters, nor stripped text longer.
                screen=lambda raw: raw.str.len_bytes() > most,
            )
        )
    if c.min_length is not None:
        least = c.min_length
        checks.append(
            Check(
                code=Code.TOO_SHORT,
                message=f"{name} must be at least {least} characters long",
                bad=lambda v: v.str.len_chars() < least,
            )
        )
    if c.pattern is not None:
        anchored = f"^(?:{c.pattern})$"
        described = field.pattern_description or f"must match the pattern {c.pattern}"
        checks.append(
            Check(
                code=Code.PATTERN,
                message=f"{name} {described}",
                bad=lambda v: v.is_not_null() & ~_matches(v, anchored),
                # Sound only when padded text can never match the pattern.
                screen=(lambda raw: _present(raw) & ~_matches(raw, anchored))
                if _pattern_avoids_whitespace(c.pattern)
                else None,
            )
        )
    if c.enum is not None:
        checks.append(_enum_check(field, name, c.enum))
    if c.minimum is not None:
        least_value = c.minimum
        checks.append(
            Check(
                code=Code.BELOW_MINIMUM,
                message=f"{name} must be at least {least_value}",
                bad=lambda v: typed(field, v) < least_value,
                screen=lambda raw: typed(field, raw) < least_value,
            )
        )
    if c.maximum is not None:
        most_value = c.maximum
        checks.append(
            Check(
                code=Code.ABOVE_MAXIMUM,
                message=f"{name} must be at most {most_value}",
                bad=lambda v: typed(field, v) > most_value,
                screen=lambda raw: typed(field, raw) > most_value,
            )
        )
    return tuple(checks)


def _required_screen(
    field: Field, type_check: Check | None, missing_values: tuple[str, ...]
) -> Rule | None:
    """A screen for empty required cells, as cheap as the field's other rules allow.

    Text that is only whitespace counts as empty. When the type's screen or a
    whitespace-free pattern already flags such text, testing for a null or
    zero-length cell is enough; otherwise the text is searched for a
    non-space character. Other missing values (such as "N/A") need the clean
    value, so they get no screen.
    """
    if missing_values != ("",):
        return None
    pattern = field.constraints.pattern
    if (type_check is not None and type_check.screen is not None) or (
        pattern is not None and _pattern_avoids_whitespace(pattern)
    ):
        return lambda raw: raw.is_null() | (raw == "")
    return lambda raw: raw.is_null() | ~raw.str.contains(r"\S")


def _type_check(field: Field, name: str) -> Check | None:
    """The check that the value has the field's type or format, if any."""

    def fails_type(value: pl.Expr) -> pl.Expr:
        return typed(field, value).is_null()

    match field.type, field.format:
        case "integer", _:
            return Check(
                code=Code.NOT_INTEGER,
                message=f"{name} must be a whole number",
                bad=lambda v: v.is_not_null() & fails_type(v),
                screen=lambda raw: _present(raw) & fails_type(raw),
            )
        case "number", _:
            return Check(
                code=Code.NOT_NUMBER,
                message=f"{name} must be a number such as 12 or 3.5",
                bad=lambda v: v.is_not_null() & (fails_type(v) | ~typed(field, v).is_finite()),
                # Large exponents overflow to infinity, so any exponent is screened.
                screen=lambda raw: (
                    _present(raw) & (~_matches(raw, NUMBER_PATTERN) | raw.str.contains("[eE]"))
                ),
            )
        case "boolean", _:
            accepted = ", ".join((*field.true_values, *field.false_values))
            return Check(
                code=Code.NOT_BOOLEAN,
                message=f"{name} must be one of: {accepted}",
                bad=lambda v: v.is_not_null() & fails_type(v),
                screen=lambda raw: _present(raw) & fails_type(raw),
            )
        case "date", _:
            written = (
                "YYYY-MM-DD, such as 1990-12-31"
                if field.date_patterns == ("default",)
                else "like " + " or ".join(_date_example(f) for f in field.date_patterns)
            )
            return Check(
                code=Code.INVALID_DATE,
                message=f"{name} must be a real date written {written}",
                bad=lambda v: v.is_not_null() & fails_type(v),
                screen=(lambda raw: _present(raw) & _iso_date_suspect(raw))
                if field.date_patterns == ("default",)
                else (lambda raw: _present(raw) & fails_type(raw)),
            )
        case "string", "email":
            return _format_check(
                Code.INVALID_EMAIL,
                f"{name} is not a valid email address",
                EMAIL_PATTERN,
            )
        case "string", "uri":
            return _format_check(
                Code.INVALID_URI,
                f"{name} is not a valid address such as https://example.org",
                URI_PATTERN,
            )
        case "string", "uuid":
            return _format_check(Code.INVALID_UUID, f"{name} is not a valid UUID", UUID_PATTERN)
        case _:
            return None


def _iso_date_suspect(raw: pl.Expr) -> pl.Expr:
    """True for every text that is not a real ISO date, and for 29 February.

    One pattern instead of parsing, at half the cost.
    """
    return ~_matches(raw, _ISO_DATE_EVERY_YEAR)


def _pattern_avoids_whitespace(pattern: str) -> bool:
    r"""Whether ``pattern`` provably matches no text that holds whitespace.

    Conservative: a pattern built only from letters, digits, common
    punctuation and the escapes ``\\d``, ``\\w`` and escaped punctuation
    passes; anything else (a space, ``.``, ``\\s``, a negated class) does not.
    """
    chars = iter(pattern)
    previous = ""
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if escaped not in _NO_WHITESPACE_ESCAPES:
                return False
            previous = ""
            continue
        if char == "^" and previous == "[":
            return False
        if char not in _NO_WHITESPACE_CHARS and char not in "^$":
            return False
        previous = char
    return True


def _format_check(code: Code, message: str, pattern: str) -> Check:
    return Check(
        code=code,
        message=message,
        bad=lambda v: v.is_not_null() & ~_matches(v, pattern),
        # The pattern admits no whitespace, so padded raw text is screened too.
        screen=lambda raw: _present(raw) & ~_matches(raw, pattern),
    )


def _enum_check(field: Field, name: str, values: tuple[str, ...]) -> Check:
    shown = ", ".join(values[:_ENUM_SHOWN]) + (", ..." if len(values) > _ENUM_SHOWN else "")
    message = f"{name} must be one of: {shown}"
    if field.type in ("string", "any"):
        return Check(
            code=Code.NOT_IN_ENUM,
            message=message,
            bad=lambda v: v.is_not_null() & ~v.is_in(values),
            screen=lambda raw: _present(raw) & ~raw.is_in(values),
        )
    allowed = pl.Series(values).to_frame("v").select(typed(field, pl.col("v"))).to_series()
    return Check(
        code=Code.NOT_IN_ENUM,
        message=message,
        bad=lambda v: typed(field, v).is_not_null() & ~typed(field, v).is_in(allowed.implode()),
    )


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used as a regular expression, or None if it can."""
    try:
        pl.select(pl.lit("").str.contains(f"^(?:{pattern})$"))
    except pl.exceptions.PolarsError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"is not a valid regular expression ({first_line})"
    return None


def date_format_is_valid(fmt: str) -> bool:
    """Whether ``fmt`` writes and reads back a full date (year, month and day)."""
    sample = dt.date(1987, 11, 28)
    try:
        text = sample.strftime(fmt)
        parsed = pl.Series([text]).str.to_date(fmt, strict=False).to_list()
    except (ValueError, pl.exceptions.PolarsError):
        return False
    return parsed == [sample]


def value_type_problem(ftype: FieldType, text: str) -> str | None:
    """Why ``text`` is not a value of type ``ftype``, or None if it is one."""
    field = Field(name="value", type=ftype)
    check = _type_check(field, "value")
    if check is None:
        return None
    frame = pl.DataFrame({"v": [text]})
    if frame.select(check.bad(pl.col("v"))).item():
        return f"is not a valid {ftype}"
    return None


def default_problems(field: Field) -> list[str]:
    """Why the field's default value would fail the field's own checks."""
    if field.default is None:
        return []
    if not field.default.strip():
        return ["must not be empty: leave it out instead"]
    frame = pl.DataFrame({"v": [field.default]})
    value = clean(pl.col("v"), ("",))
    return [
        f"'{field.default}' fails the field's own rule: {check.message}"
        for check in field_checks(field, label=field.name, missing_values=("",))
        if frame.select(check.bad(value).fill_null(value=False)).item()
    ]
