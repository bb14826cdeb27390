"""The shipped Prometheus rules and Grafana dashboard: valid, on documented metrics, firing right."""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.support import ROOT, require

if TYPE_CHECKING:
    from pathlib import Path

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
    assert "SUCCESS: 9 rules found" in checked.stdout
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


DASHBOARD = ROOT / "deploy" / "grafana" / "user-import-watcher.json"


def _dashboard_queries() -> list[str]:
    """Every query of the Grafana dashboard, its variables given a value that matches all."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [
        target["expr"].replace("$instance", ".*").replace("$tenant", ".*")
        for panel in panels
        for target in panel["targets"]
    ]


def test_the_dashboard_shows_documented_metrics_only() -> None:
    """Each panel queries metrics METRICS.md describes (histograms by their buckets)."""
    documented = (ROOT / "deploy" / "METRICS.md").read_text()
    used = {
        re.sub(r"_bucket$", "", name)
        for query in _dashboard_queries()
        for name in re.findall(r"user_import_[a-z_]+", query)
    }
    assert len(used) >= 10
    assert {name for name in used if f"`{name}`" not in documented} == set()


@pytest.mark.integration
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """Each query parses in promtool, as the expression of a recording rule."""
    promtool = require("promtool")
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query{n}", "expr": query}
                    for n, query in enumerate(_dashboard_queries())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(json.dumps(rules))  # JSON is YAML
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_dashboard_queries())} rules found" in checked.stdout
