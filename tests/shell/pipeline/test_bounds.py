"""Reports are bounded in bytes: one huge value never makes a huge list or message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support import Site
from watcher.cli import EXIT_OK, main
from watcher.core.reporting import CELL_LIMIT, MESSAGE_LIMIT

if TYPE_CHECKING:
    from pathlib import Path


def test_a_row_holding_one_huge_value_makes_a_small_list_and_message(tmp_path: Path) -> None:
    """20 MB in one quoted cell: the .failures.csv and the email stay small."""
    site = Site(tmp_path)
    huge = "A" * 20_000_000
    site.drop_file(
        "big.csv",
        f'unique_id,first_name,email\nU-1,"{huge}",a@jcu.example\nU-2,Ann,b@jcu.example\n',
    )
    status = main(["process", "--json", "--config", str(site.config), "--tenant", "jcu",
                   str(site.drop / "big.csv")])  # fmt: skip
    assert status == EXIT_OK
    (failures,) = site.bak.glob("*.failures.csv")
    assert len(failures.read_bytes()) < 10 * CELL_LIMIT
    assert f"[cut: {len(huge):,} characters]" in failures.read_text(encoding="utf-8-sig")
    (message,) = site.outbox()
    assert len(message.read_bytes()) < MESSAGE_LIMIT // 100
    assert sorted(site.users()) == ["U-2"]
