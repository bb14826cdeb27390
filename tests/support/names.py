"""Names a customer can give an entry: any bytes a folder takes, and the tricky ones."""

from __future__ import annotations

import os

from hypothesis import strategies as st

NAME_MAX = 255

# Names that imitate the service's own archives and answers, or carry dates
# no calendar has: the findings that once stopped the service.
PLANTED = (
    "x.20260230T000000Z.deadbeef.csv",
    "x.20269999T999999Z.deadbeef.csv",
    "x.29991231T000000Z.deadbeef.csv",
    "a.20200101T000000Z.deadbeef.csv",
    "y.csv.check.json",
    "y.csv.check.csv",
    "z.20200101T000000Z.deadbeef.csv.result.json",
    "z.20200101T000000Z.deadbeef.csv.failures.csv",
    "w.20200101T000000Z.deadbeef.csv.refused",
    "n" * 250 + ".csv",
    "é" * 125 + ".csv",
)


def _fits(raw: bytes) -> bool:
    return raw not in (b".", b"..") and 0 < len(raw) <= NAME_MAX


def customer_names() -> st.SearchStrategy[str]:
    """A name as Python sees it: any bytes but ``/`` and NUL, up to ``NAME_MAX``."""
    raw = st.binary(min_size=1, max_size=NAME_MAX).map(
        lambda b: b.replace(b"/", b"_").replace(b"\x00", b"_")
    )
    stamps = st.from_regex(r"\A[0-9]{8}T[0-9]{6}Z\Z")
    imitations = st.builds(
        lambda stem, stamp, tail: f"{stem}.{stamp}.deadbeef{tail}".encode(),
        st.text(alphabet="abcxyz.-_ ", min_size=1, max_size=20),
        stamps,
        st.sampled_from(["", ".csv", ".csv.refused", ".csv.result.json", ".csv.check.json"]),
    )
    planted = st.sampled_from([os.fsencode(n) for n in PLANTED])
    return st.one_of(raw, imitations, planted).filter(_fits).map(os.fsdecode)
