"""The stable error codes a customer or a script can rely on.

A code never changes meaning once released; the human message next to it may
be reworded. File-level codes fail every row of a file with one reason;
row-level codes fail one row. The table in ``schema/README.md`` documents each
one, and a test keeps that table and this module in step.
"""

from __future__ import annotations

import dataclasses
import enum

__all__ = ["Code", "Level", "Problem"]


class Level(enum.Enum):
    """Whether a code fails a whole file or one row."""

    FILE = "file"
    ROW = "row"


class Code(enum.StrEnum):
    """Every failure the watcher reports, file-level first."""

    # File level: the file as a whole cannot be imported.
    FILE_EMPTY = "file_empty"
    FILE_BINARY = "file_binary"
    FILE_ENCODING = "file_encoding"
    FILE_TOO_LARGE = "file_too_large"
    FILE_TOO_MANY_ROWS = "file_too_many_rows"
    FILE_REFUSED = "file_refused"
    FILE_INTERRUPTED = "file_interrupted"
    FILE_UNPROCESSABLE = "file_unprocessable"
    FILE_DISCARDED = "file_discarded"
    FILE_ENCRYPTION = "file_encryption"
    FILE_SPREADSHEET = "file_spreadsheet"
    CSV_MALFORMED = "csv_malformed"
    HEADER_MISSING_ROW = "header_missing_row"
    HEADER_UNKNOWN = "header_unknown"
    HEADER_DUPLICATE = "header_duplicate"
    HEADER_REQUIRED = "header_required"
    HEADER_UNNAMED = "header_unnamed"
    WRONG_DELIMITER = "wrong_delimiter"
    # Row level: one user cannot be imported.
    TOO_FEW_FIELDS = "too_few_fields"
    TOO_MANY_FIELDS = "too_many_fields"
    REQUIRED = "required"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    PATTERN = "pattern"
    INVALID_EMAIL = "invalid_email"
    INVALID_URI = "invalid_uri"
    INVALID_UUID = "invalid_uuid"
    NOT_INTEGER = "not_integer"
    NOT_NUMBER = "not_number"
    NOT_BOOLEAN = "not_boolean"
    INVALID_DATE = "invalid_date"
    NOT_IN_ENUM = "not_in_enum"
    BELOW_MINIMUM = "below_minimum"
    ABOVE_MAXIMUM = "above_maximum"
    DUPLICATE_KEY = "duplicate_key"
    DUPLICATE_VALUE = "duplicate_value"
    API_REJECTED = "api_rejected"

    @property
    def level(self) -> Level:
        """Whether this code fails the whole file or a single row."""
        return Level.FILE if self in _FILE_CODES else Level.ROW


_FILE_CODES = frozenset(
    {
        Code.FILE_EMPTY,
        Code.FILE_BINARY,
        Code.FILE_ENCODING,
        Code.FILE_TOO_LARGE,
        Code.FILE_TOO_MANY_ROWS,
        Code.FILE_REFUSED,
        Code.FILE_INTERRUPTED,
        Code.FILE_UNPROCESSABLE,
        Code.FILE_DISCARDED,
        Code.FILE_ENCRYPTION,
        Code.FILE_SPREADSHEET,
        Code.CSV_MALFORMED,
        Code.HEADER_MISSING_ROW,
        Code.HEADER_UNKNOWN,
        Code.HEADER_DUPLICATE,
        Code.HEADER_REQUIRED,
        Code.HEADER_UNNAMED,
        Code.WRONG_DELIMITER,
    }
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A file-level failure: a stable code, a sentence for the customer, the field."""

    code: Code
    message: str
    field: str | None = None
