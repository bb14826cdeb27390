"""The shipped Prometheus alert rules: valid, and each alert firing when it should."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support import ROOT, require

RULES = ROOT / "deploy" / "prometheus"


@pytest.mark.integration
def test_the_alert_rules_load_and_their_unit_tests_pass() -> None:
    """The rules load in promtool, and the alerts' own tests against series pass."""
    promtool = require("promtool")
    checked = subprocess.run(
        [promtool, "check", "rules", "user-import-watcher.rules.yml"],
        cwd=RULES, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "user-import-watcher.tests.yml"],
        cwd=RULES, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_metric_an_alert_uses_is_one_the_service_exposes() -> None:
    """A renamed metric would leave an alert that never fires: every name is in METRICS.md."""
    rules = (RULES / "user-import-watcher.rules.yml").read_text()
    documented = (ROOT / "deploy" / "METRICS.md").read_text()
    used = set(re.findall(r"user_import_[a-z_]+", rules))
    assert used
    assert {name for name in used if f"`{name}`" not in documented} == set()
