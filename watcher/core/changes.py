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

A *full snapshot* (a tenant's ``snapshot = "full"``) is the whole
population: the users known for the tenant and target whose keys no row of
the batch holds are *missing* (:func:`missing_users`); they are reported,
or deactivated.

The safeguard holds a batch whose changed and deactivated users are more
than a share of the users known for the tenant, and a full snapshot so much
smaller than the known population that it is likelier a cut export than a
roster (:func:`hold_reason`). Pure: frames and values in,
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
    "HoldReason",
    "Status",
    "compare",
    "fingerprints",
    "hold_reason",
    "join_key",
    "missing_users",
    "preview",
    "split_key",
    "summarise",
    "user_key",
    "user_keys",
]

Status = Literal["new", "unchanged", "stale", "changed"]
# Why the safeguard holds a batch: too many users changed or deactivated, or a
# full snapshot far smaller than the users known (a cut or filtered export).
HoldReason = Literal["changes", "small_snapshot"]

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


def join_key(values: Sequence[str]) -> str:
    """The journal's key of a user from the values of its key fields."""
    return _KEY_SEPARATOR.join(values)


def split_key(key: str) -> list[str]:
    """The values of a user's key fields, from the journal's key."""
    return key.split(_KEY_SEPARATOR)


def user_keys(rows: pl.DataFrame, key: Sequence[str]) -> pl.Series:
    """The journal's key of each row's user (an empty key field counts as empty text)."""
    return rows.select(
        pl.concat_str([pl.col(k).fill_null("") for k in key], separator=_KEY_SEPARATOR)
    ).to_series()


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
    users = user_keys(rows, key)
    return pl.DataFrame(
        {"row": rows["row"], "key": users, "digest": digests, "fields": checksums.to_series()},
        schema=FINGERPRINTS,
    )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChangeSummary:
    """What a batch would do to the tenant's users, in counts and column names.

    ``known`` counts the users confirmed for the tenant and target before the
    batch; ``changed`` those of them the batch would change; ``columns`` the
    fields that change most, with how many users each changes. For a full
    snapshot, ``snapshot`` counts the users its rows name (valid or not) and
    ``missing`` the known users it lacks; ``deactivate`` those of them the
    batch would deactivate (all, or none when they are only reported).
    ``hold`` is why the safeguard held the batch, when it did.
    """

    rows: int
    new: int
    unchanged: int
    changed: int
    known: int
    columns: tuple[tuple[str, int], ...] = ()
    snapshot: int | None = None
    missing: int = 0
    deactivate: int = 0
    hold: HoldReason | None = None

    @property
    def share(self) -> float:
        """The part of the known users the batch would change or deactivate."""
        return (self.changed + self.deactivate) / self.known if self.known else 0.0

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


def summarise(compared: pl.DataFrame, *, known: int, shown: int | None = 5) -> ChangeSummary:
    """The counts of a batch's compared rows, and the fields that change most users.

    ``shown`` bounds the fields listed (None: every field that changes a user).
    """
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


def missing_users(known: pl.DataFrame, present: pl.Series) -> pl.DataFrame:
    """The rows of ``known`` (a ``key`` column first) whose key is not ``present``, by key.

    ``present`` holds the keys a full snapshot's rows name: valid rows and
    failed ones alike (a user whose row has a bad email is not gone).
    """
    named = pl.DataFrame({"key": present}).unique()
    return known.join(named, on="key", how="anti").sort("key")


def hold_reason(
    summary: ChangeSummary, *, changed_share: float, min_known: int, min_rows: int = 0
) -> HoldReason | None:
    """Why the safeguard holds the batch; None when it does not.

    ``small_snapshot``: a full snapshot that leaves users missing and names
    fewer than ``min_rows`` users, or (with ``min_known`` known) fewer than
    half of the known ones: whatever it changes, a cut or filtered export is
    likelier than half the population leaving at once (said first: it is
    the likelier story). ``changes``: with at least ``min_known`` users
    known, the batch changes or deactivates more than ``changed_share`` of
    them (1.0 never holds).
    """
    if summary.snapshot is not None and summary.missing:
        if summary.snapshot < min_rows:
            return "small_snapshot"
        if summary.known >= min_known and summary.snapshot < summary.known / 2:
            return "small_snapshot"
    affected = summary.changed + summary.deactivate
    if summary.known >= min_known and affected > changed_share * summary.known:
        return "changes"
    return None


def preview(summary: ChangeSummary) -> dict[str, object]:
    """What a file would do, as the check lane's ``changes`` says it: counts and column names.

    ``unchanged`` counts the rows that would change no user's value (sent or
    not); ``missing`` is there for a full snapshot only.
    """
    answer: dict[str, object] = {
        "new": summary.new,
        "changed": {"total": summary.changed, "columns": dict(summary.columns)},
        "unchanged": summary.rows - summary.new - summary.changed,
    }
    if summary.snapshot is not None:
        answer["missing"] = summary.missing
        answer["deactivate"] = summary.deactivate
    answer["would_hold"] = summary.hold
    return answer
