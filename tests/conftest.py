"""Shared fixtures: the shipped schema, and helpers to validate bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from watcher.reading import Table, Unreadable, read_table
from watcher.schema import Schema, load_schema, parse_schema
from watcher.validation import ValidationReport, validate

ROOT = Path(__file__).resolve().parent.parent
OPSCOM_SCHEMA = ROOT / "schema" / "opscom-users.json"


@pytest.fixture(scope="session")
def opscom() -> Schema:
    """The shipped OPS-COM schema."""
    return load_schema(OPSCOM_SCHEMA)


def small_schema(*fields: dict[str, Any], **top: Any) -> Schema:
    """A schema built from field objects, as a file would hold them."""
    return parse_schema(json.dumps({"fields": list(fields), **top}))


def table_of(data: bytes) -> Table:
    """Read ``data`` and insist it is readable."""
    table = read_table(data)
    assert isinstance(table, Table), table
    return table


def check(data: bytes | str, schema: Schema) -> ValidationReport:
    """Validate CSV text against ``schema``."""
    raw = data.encode() if isinstance(data, str) else data
    return validate(read_table(raw), schema)


def failures(report: ValidationReport) -> list[tuple[int, str | None, str]]:
    """The report's failures as (row, field, code) triples."""
    return [(f.row, f.field, f.code) for f in report.row_failures()]


def unreadable(data: bytes) -> Unreadable:
    """Read ``data`` and insist it is refused."""
    result = read_table(data)
    assert isinstance(result, Unreadable), result
    return result
