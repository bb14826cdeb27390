"""The documented error-code table and the code enum stay in step."""

from __future__ import annotations

import re

from tests.support import ROOT
from watcher.core.codes import Code


def documented() -> dict[str, str]:
    """The codes and levels in schema/README.md's table."""
    text = (ROOT / "schema" / "README.md").read_text()
    table = text.split("## Error codes", 1)[1]
    return dict(re.findall(r"^\| `([a-z_]+)` \| (file|row) \|", table, flags=re.MULTILINE))


def test_every_code_is_documented_with_its_level() -> None:
    """Each code appears once in the table, at the level the enum gives it."""
    assert documented() == {code.value: code.level.value for code in Code}
