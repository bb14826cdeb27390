"""Fingerprints of rows, what changed for each user, and when the safeguard holds a batch."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

from watcher.core.changes import (
    KNOWN,
    ChangeSummary,
    compare,
    fingerprints,
    hold_reason,
    join_key,
    missing_users,
    preview,
    split_key,
    summarise,
    user_key,
)
from watcher.core.schema_parser import parse_schema

DAY = 86400.0


def rows(*values: dict[str, str | None]) -> pl.DataFrame:
    """API rows as validation hands them over, numbered from 2."""
    frame = pl.DataFrame(
        list(values), schema={"unique_id": pl.String, "email": pl.String, "city": pl.String}
    )
    return frame.with_row_index("row", offset=2).with_columns(pl.col("row").cast(pl.Int64))


def known_from(prints: pl.DataFrame, confirmed_at: float) -> pl.DataFrame:
    """What the journal would hold had ``prints`` been imported at ``confirmed_at``."""
    return prints.select(
        "key",
        pl.col("digest").alias("known_digest"),
        pl.col("fields").alias("known_fields"),
        pl.lit(confirmed_at, dtype=pl.Float64).alias("confirmed_at"),
    )


def test_a_digest_covers_every_sent_value_and_nothing_else() -> None:
    """Same payload, same digest; another value, another; an empty cell is no value."""
    base = fingerprints(rows({"unique_id": "U1", "email": "a@x.org", "city": None}), ["unique_id"])
    same = fingerprints(rows({"unique_id": "U1", "email": "a@x.org", "city": None}), ["unique_id"])
    other = fingerprints(rows({"unique_id": "U1", "email": "b@x.org", "city": None}), ["unique_id"])
    assert base["digest"].to_list() == same["digest"].to_list()
    assert base["digest"].to_list() != other["digest"].to_list()
    assert base["key"].to_list() == ["U1"]


def test_values_cannot_be_shifted_between_fields_to_forge_a_digest() -> None:
    """Values "ab" + "c" and "a" + "bc" are different payloads, so different digests."""
    one = fingerprints(rows({"unique_id": "U1", "email": "ab", "city": "c"}), ["unique_id"])
    two = fingerprints(rows({"unique_id": "U1", "email": "a", "city": "bc"}), ["unique_id"])
    assert one["digest"].item() != two["digest"].item()


def test_the_user_key_is_the_primary_key_else_the_first_field() -> None:
    """A schema's primaryKey names users; without one, its first field does."""
    keyed = parse_schema(
        '{"fields": [{"name": "a", "constraints": {"required": true}}, {"name": "b"}],'
        ' "primaryKey": ["a"]}'
    )
    plain = parse_schema('{"fields": [{"name": "b"}, {"name": "a"}]}')
    assert (user_key(keyed), user_key(plain)) == (("a",), ("b",))


def test_rows_are_new_unchanged_stale_or_changed() -> None:
    """Against what was confirmed: the resend window decides between unchanged and stale."""
    before = fingerprints(
        rows(
            {"unique_id": "U1", "email": "a@x.org", "city": "Regina"},
            {"unique_id": "U2", "email": "b@x.org", "city": "Regina"},
            {"unique_id": "U3", "email": "c@x.org", "city": "Regina"},
        ),
        ["unique_id"],
    )
    known = known_from(before, confirmed_at=0.0)
    known = known.with_columns(
        pl.when(pl.col("key") == "U2").then(-30 * DAY).otherwise(0.0).alias("confirmed_at")
    )
    now = fingerprints(
        rows(
            {"unique_id": "U1", "email": "a@x.org", "city": "Regina"},
            {"unique_id": "U2", "email": "b@x.org", "city": "Regina"},
            {"unique_id": "U3", "email": "c@x.org", "city": "Halifax"},
            {"unique_id": "U4", "email": "d@x.org", "city": None},
        ),
        ["unique_id"],
    )
    compared = compare(now, known, now=DAY, resend_after=7 * DAY)
    assert compared.select("key", "status", "changes").rows() == [
        ("U1", "unchanged", None),
        ("U2", "stale", None),
        ("U3", "changed", "city"),
        ("U4", "new", None),
    ]


def test_an_empty_cell_changes_no_user() -> None:
    """Leaving a column empty sends nothing for it: another digest, but no changed field."""
    before = fingerprints(
        rows({"unique_id": "U1", "email": "a@x.org", "city": "Regina"}), ["unique_id"]
    )
    now = fingerprints(rows({"unique_id": "U1", "email": "a@x.org", "city": None}), ["unique_id"])
    compared = compare(now, known_from(before, 0.0), now=1.0, resend_after=DAY)
    assert compared.select("status", "changes").rows() == [("changed", "")]
    assert summarise(compared, known=1).changed == 0


def test_the_summary_counts_users_and_names_the_columns_that_change_most() -> None:
    """Two of three known users change, both in city and one in email too."""
    before = fingerprints(
        rows(
            {"unique_id": "U1", "email": "a@x.org", "city": "Regina"},
            {"unique_id": "U2", "email": "b@x.org", "city": "Regina"},
            {"unique_id": "U3", "email": "c@x.org", "city": "Regina"},
        ),
        ["unique_id"],
    )
    now = fingerprints(
        rows(
            {"unique_id": "U1", "email": "z@x.org", "city": "Halifax"},
            {"unique_id": "U2", "email": "b@x.org", "city": "Halifax"},
            {"unique_id": "U3", "email": "c@x.org", "city": "Regina"},
            {"unique_id": "U9", "email": "n@x.org", "city": "Regina"},
        ),
        ["unique_id"],
    )
    compared = compare(now, known_from(before, 0.0), now=1.0, resend_after=DAY)
    assert summarise(compared, known=3) == ChangeSummary(
        rows=4, new=1, unchanged=1, changed=2, known=3, columns=(("city", 2), ("email", 1))
    )


def test_a_summary_survives_the_journal() -> None:
    """Kept as JSON, read back the same."""
    summary = ChangeSummary(rows=9, new=1, unchanged=2, changed=5, known=8, columns=(("city", 5),))
    assert ChangeSummary.from_json(summary.to_json()) == summary
    assert summary.share == 5 / 8


@pytest.mark.parametrize(
    ("changed", "known", "held"),
    [(21, 100, True), (20, 100, False), (99, 99, False), (0, 0, False), (30, 1000, False)],
)
def test_the_safeguard_holds_more_than_the_share_of_enough_known_users(
    changed: int, known: int, held: bool
) -> None:
    """20% of at least 100 known users: 21 of 100 is held, 20 is not, 99 of 99 too few known."""
    summary = ChangeSummary(rows=known, new=0, unchanged=0, changed=changed, known=known)
    expected = "changes" if held else None
    assert hold_reason(summary, changed_share=0.2, min_known=100) == expected


def test_a_share_of_one_never_holds() -> None:
    """safeguard_changed = 1.0 turns the safeguard off: every known user changing passes."""
    summary = ChangeSummary(rows=500, new=0, unchanged=0, changed=500, known=500)
    assert hold_reason(summary, changed_share=1.0, min_known=100) is None


def test_missing_users_are_the_known_keys_no_row_names() -> None:
    """Known users absent from the snapshot, by key; present keys of failed rows count as present."""
    known = pl.DataFrame({"key": ["U3", "U1", "U2", "U4"], "ident": ["c", "a", "b", "d"]})
    present = pl.Series(["U1", "U4", "U4", "U9"])
    assert missing_users(known, present).rows() == [("U2", "b"), ("U3", "c")]


def test_nothing_is_missing_when_every_known_user_is_named() -> None:
    """A snapshot naming everyone known, and more, leaves nobody missing."""
    known = pl.DataFrame(
        {"key": ["U1"], "ident": [None]}, schema={"key": pl.String, "ident": pl.String}
    )
    assert missing_users(known, pl.Series(["U1", "U2"])).is_empty()


def test_a_key_of_several_fields_splits_back_into_its_values() -> None:
    """The journal's key of a two-field primary key gives both values back, in order."""
    assert split_key(join_key(["S-1", "OPSCOM"])) == ["S-1", "OPSCOM"]


def full(
    *,
    rows: int = 1000,
    new: int = 0,
    changed: int = 0,
    known: int = 1000,
    missing: int = 0,
    deactivate: int = 0,
) -> ChangeSummary:
    """A full snapshot's summary: 1,000 known users unless said otherwise."""
    return ChangeSummary(
        rows=rows,
        new=new,
        unchanged=rows - new - changed,
        changed=changed,
        known=known,
        snapshot=rows,
        missing=missing,
        deactivate=deactivate,
    )


@pytest.mark.parametrize(
    ("summary", "reason"),
    [
        (full(rows=970, missing=30, deactivate=30), None),
        (full(rows=700, missing=300, deactivate=300), "changes"),
        (full(rows=800, missing=100, deactivate=100, changed=101), "changes"),
        (full(rows=700, missing=300), None),
        (full(rows=40, missing=960), "small_snapshot"),
        (full(rows=499, missing=501), "small_snapshot"),
        (full(rows=500, missing=500), None),
    ],
)
def test_the_safeguard_counts_deactivations_and_holds_a_small_snapshot(
    summary: ChangeSummary, reason: str | None
) -> None:
    """Changes and deactivations count together; under half the known users holds whatever."""
    assert hold_reason(summary, changed_share=0.2, min_known=100) == reason


def test_safeguard_min_rows_holds_a_snapshot_shorter_than_it() -> None:
    """A full snapshot under safeguard_min_rows is held when it leaves users missing, only then."""
    short = full(rows=900, missing=1, known=901)
    assert hold_reason(short, changed_share=0.2, min_known=100, min_rows=950) == "small_snapshot"
    whole = full(rows=900, missing=0, known=900)
    assert hold_reason(whole, changed_share=0.2, min_known=100, min_rows=950) is None
    few_known = full(rows=10, missing=20, known=30)
    assert hold_reason(few_known, changed_share=0.2, min_known=100) is None
    assert hold_reason(few_known, changed_share=0.2, min_known=100, min_rows=25) == "small_snapshot"


def test_a_partial_batch_is_never_held_for_its_size() -> None:
    """Without a snapshot count (a partial tenant) a batch of 10 rows among 1,000 known passes."""
    summary = ChangeSummary(rows=10, new=0, unchanged=10, changed=0, known=1000)
    assert hold_reason(summary, changed_share=0.2, min_known=100, min_rows=500) is None


def test_the_preview_gives_counts_and_column_names() -> None:
    """New, changed by column, unchanged (stale rows too), missing, and why it would be held."""
    summary = dataclasses.replace(
        full(rows=1000, new=12, changed=340, missing=3, deactivate=3),
        columns=(("email", 300), ("last_name", 40)),
        hold="changes",
    )
    assert preview(summary) == {
        "new": 12,
        "changed": {"total": 340, "columns": {"email": 300, "last_name": 40}},
        "unchanged": 648,
        "missing": 3,
        "deactivate": 3,
        "would_hold": "changes",
    }
    partial = ChangeSummary(rows=5, new=5, unchanged=0, changed=0, known=0)
    assert preview(partial) == {
        "new": 5,
        "changed": {"total": 0, "columns": {}},
        "unchanged": 0,
        "would_hold": None,
    }


def test_known_frames_have_the_columns_compare_needs() -> None:
    """An empty journal answers with an empty frame of the right shape: every row is new."""
    prints = fingerprints(rows({"unique_id": "U1", "email": None, "city": None}), ["unique_id"])
    compared = compare(prints, pl.DataFrame(schema=KNOWN), now=0.0, resend_after=DAY)
    assert compared["status"].to_list() == ["new"]


def test_the_digest_of_a_fixed_row_never_changes() -> None:
    """A fingerprint is a promise across releases: a new digest would resend every user.

    The constants were computed once; a library upgrade that changes how the
    canonical text or the checksums come out fails here, not in production.
    """
    row = rows({"unique_id": "U-00042", "email": "zoë@jcu.example", "city": None})
    (found,) = fingerprints(row, ["unique_id"]).rows()
    assert found == (
        2,
        "U-00042",
        "0413d0da2796b9e30be303cd418e8754",
        "email=2251185335\x1eunique_id=1362036806",
    )
