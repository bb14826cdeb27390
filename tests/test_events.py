"""The log event catalogue in deploy/EVENTS.md matches what the code emits."""

from __future__ import annotations

import re

from tests.support import ROOT
from tests.support.events import emitted

CONTEXT = {"tenant", "batch_id"}


def catalogue() -> dict[str, tuple[set[str], set[str]]]:
    """Each documented event with its levels and fields."""
    text = (ROOT / "deploy" / "EVENTS.md").read_text()
    rows = re.findall(
        r"^\| `([a-z_]+\.[a-z_]+)` \| ([a-z, ]+) \| ([^|]*) \|", text, flags=re.MULTILINE
    )
    return {
        name: (
            {lvl.strip() for lvl in levels.split(",")},
            set(re.findall(r"`([a-z0-9_]+)`", fields)),
        )
        for name, levels, fields in rows
    }


def test_every_emitted_event_is_documented_and_nothing_else() -> None:
    """The catalogue names exactly the events the code can emit."""
    assert sorted(catalogue()) == sorted(emitted())


def test_documented_levels_are_the_emitted_levels() -> None:
    """Each event is documented at the level it is logged at."""
    documented = catalogue()
    assert {n: levels for n, (levels, _) in emitted().items()} == {
        n: documented[n][0] for n in emitted()
    }


def test_every_emitted_field_is_documented() -> None:
    """A field the code logs appears in its event's row (context fields aside)."""
    documented = catalogue()
    missing = {
        name: sorted(fields - documented[name][1] - CONTEXT)
        for name, (_, fields) in emitted().items()
    }
    assert {n: f for n, f in missing.items() if f} == {}


def test_the_catalogue_has_the_events_operators_alert_on() -> None:
    """Heartbeat, missing folders, unfinished files, the outbox and the API are covered."""
    assert {
        "service.heartbeat",
        "tenant.drop_dir_missing",
        "file.left_unfinished",
        "mail.outbox_growing",
        "import.api_unavailable",
        "import.auth_failed",
    } <= set(catalogue())
