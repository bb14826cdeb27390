"""Which rows of a batch change a user, and whether a batch changes too many.

A row's *fingerprint* is what the API would receive for it: a digest over its
non-empty API fields (names and values, after defaults and normal forms, so
a schema change that changes the payload changes the digest) and a short
checksum per field, to tell which columns changed. The journal keeps the
fingerprint last *confirmed* for each user (a 2xx the import counted as a
success, or the embedded store's upsert) and for each target.

Against it, each row of a batch is:

- ``new``: no fingerprint is confirmed for its user;
- ``unchanged``: the same digest was confirmed within the resend window: it
  is not sent (an edit made in the product's own UI is overwritten at least
  once per window, never kept for ever by skipping);
- ``stale``: the same digest, confirmed longer ago: sent again;
- ``changed``: another digest. It *changes the user* when a value it sends
  differs from the one confirmed (an empty cell sends nothing and changes
  nothing).

The safeguard holds a batch whose changed users are more than a share of
the users known for the tenant (:func:`holds`). Pure: frames and values in,
frames and values out; the digests are computed here, not by polars, so they
stay the same across polars versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from collections import Counter
from typing import TYPE_CHECKING, Literal

import polars as pl

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watcher.core.schema import Schema

__all__ = [
    "FINGERPRINTS",
    "KNOWN",
    "ChangeSummary",
    "Status",
    "compare",
    "fingerprints",
    "holds",
    "summarise",
    "user_key",
]

Status = Literal["new", "unchanged", "stale", "changed"]

# The frames of this module: a batch's fingerprints, and what is known of its users.
FINGERPRINTS = {"row": pl.Int64, "key": pl.String, "digest": pl.String, "fields": pl.String}
KNOWN = {
    "key": pl.String,
    "known_digest": pl.String,
    "known_fields": pl.String,
    "confirmed_at": pl.Float64,
}
_KEY_SEPARATOR = "\x1f"
_FIELDS = "\x1e"  # between a row's field checksums, and between changed field names


def user_key(schema: Schema) -> tuple[str, ...]:
    """The fields that name a user: the schema's primary key, else its first field."""
    return schema.primary_key or (schema.fields[0].name,)


def fingerprints(rows: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Each API row's user key, digest and field checksums (:data:`FINGERPRINTS`).

    ``rows`` are as :meth:`watcher.core.validation.ValidationReport.api_rows`
    gives them: ``row`` and one String column per API field, null for an
    empty cell.
    """
    if rows.is_empty():
        return pl.DataFrame(schema=FINGERPRINTS)
    fields = sorted(c for c in rows.columns if c != "row")
    # Name, byte length and value of each non-empty field, in name order: no
    # two payloads share an encoding, whatever their values hold.
    canonical = rows.select(
        pl.concat_str(
            [
                pl.when(pl.col(f).is_not_null()).then(
                    pl.lit(f"{f}\x00")
                    + pl.col(f).str.len_bytes().cast(pl.String)
                    + pl.lit(":")
                    + pl.col(f)
                )
                for f in fields
            ],
            separator="",
            ignore_nulls=True,
        ).fill_null("")
    ).to_series()
    digests = [hashlib.blake2b(text.encode(), digest_size=16).hexdigest() for text in canonical]
    # Per field, a CRC-32 of its value, as "name=crc" joined by _FIELDS: one
    # C call per cell here, the joining in polars.
    checksums = pl.DataFrame(
        {
            f: pl.Series(
                [None if v is None else zlib.crc32(v.encode()) for v in rows[f]], dtype=pl.UInt32
            )
            for f in fields
        }
    ).select(
        pl.concat_str(
            [pl.lit(f"{f}=") + pl.col(f).cast(pl.String) for f in fields],
            separator=_FIELDS,
            ignore_nulls=True,
        ).fill_null("")
    )
    users = rows.select(
        pl.concat_str([pl.col(k).fill_null("") for k in key], separator=_KEY_SEPARATOR)
    ).to_series()
    return pl.DataFrame(
        {"row": rows["row"], "key": users, "digest": digests, "fields": checksums.to_series()},
        schema=FINGERPRINTS,
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChangeSummary:
    """What a batch would do to the tenant's users, in counts and column names.

    ``known`` counts the users confirmed for the tenant and target before the
    batch; ``changed`` those of them the batch would change; ``columns`` the
    fields that change most, with how many users each changes.
    """

    rows: int
    new: int
    unchanged: int
    changed: int
    known: int
    columns: tuple[tuple[str, int], ...] = ()

    @property
    def share(self) -> float:
        """The part of the known users the batch would change."""
        return self.changed / self.known if self.known else 0.0

    def to_json(self) -> str:
        """The summary as the journal keeps it."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ChangeSummary:
        """A summary the journal kept."""
        values = json.loads(text)
        values["columns"] = tuple((name, count) for name, count in values["columns"])
        return cls(**values)


def compare(
    prints: pl.DataFrame, known: pl.DataFrame, *, now: float, resend_after: float
) -> pl.DataFrame:
    """Each fingerprint with its user's :data:`Status` and the fields that change it.

    ``known`` holds what is confirmed for the batch's users (:data:`KNOWN`).
    Adds ``status`` and, for a ``changed`` row, ``changes``: the names of the
    fields whose values differ from the confirmed ones (joined by an ASCII
    record separator; empty when none does), null for other rows.
    """
    joined = prints.join(known, on="key", how="left", maintain_order="left")
    status = (
        pl.when(pl.col("known_digest").is_null())
        .then(pl.lit("new"))
        .when(pl.col("known_digest") != pl.col("digest"))
        .then(pl.lit("changed"))
        .when(pl.col("confirmed_at") >= now - resend_after)
        .then(pl.lit("unchanged"))
        .otherwise(pl.lit("stale"))
    )
    joined = joined.with_columns(status=status)
    changes: list[str | None] = [None] * joined.height
    changed = joined.with_row_index("at").filter(pl.col("status") == "changed")
    for at, fields, known_fields in changed.select("at", "fields", "known_fields").iter_rows():
        changes[at] = _FIELDS.join(_changed_fields(fields, known_fields))
    return joined.with_columns(changes=pl.Series(changes, dtype=pl.String))


def _changed_fields(fields: str, known_fields: str | None) -> list[str]:
    """The fields a row sends whose values differ from (or were not in) what was confirmed."""
    before = dict(_pairs(known_fields or ""))
    return [name for name, checksum in _pairs(fields) if before.get(name) != checksum]


def _pairs(checksums: str) -> list[tuple[str, str]]:
    """The (field, checksum) pairs of a row's checksums."""
    found = []
    for part in checksums.split(_FIELDS):
        name, _, checksum = part.partition("=")
        if name:
            found.append((name, checksum))
    return found


def summarise(compared: pl.DataFrame, *, known: int, shown: int = 5) -> ChangeSummary:
    """The counts of a batch's compared rows, and the fields that change most users."""
    states = Counter(compared["status"].to_list())
    by_field: Counter[str] = Counter()
    changed = 0
    for fields in compared.filter(pl.col("status") == "changed")["changes"].to_list():
        if fields:
            changed += 1
            by_field.update(fields.split(_FIELDS))
    return ChangeSummary(
        rows=compared.height,
        new=states["new"],
        unchanged=states["unchanged"],
        changed=changed,
        known=known,
        columns=tuple(by_field.most_common(shown)),
    )


def holds(summary: ChangeSummary, *, changed_share: float, min_known: int) -> bool:
    """Whether the safeguard holds the batch.

    It does when the batch changes more than ``changed_share`` of the known
    users, and at least ``min_known`` are known; ``changed_share = 1.0``
    never holds.
    """
    return summary.known >= min_known and summary.changed > changed_share * summary.known
