"""The files in deploy/: systemd's and sshd's own checks accept them."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, require, require_sshd
from watcher.config import load_config

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "user-import-watcher.service"
SNIPPET = DEPLOY / "sshd_config.d" / "user-import.conf"


@pytest.mark.integration
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd-analyze verify finds nothing wrong (with ExecStart pointing at this install)."""
    analyze = require("systemd-analyze")
    watcher = Path(sys.executable).parent / "watcher"
    unit = tmp_path / UNIT.name
    unit.write_text(
        UNIT.read_text().replace("/opt/user-import-watcher/.venv/bin/watcher", str(watcher))
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if unit.name in line] == []


@pytest.mark.integration
def test_the_sandbox_exposure_score_is_at_most_two(capsys: pytest.CaptureFixture[str]) -> None:
    """systemd-analyze security rates the unit 2.0 or lower (lower is safer)."""
    analyze = require("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    score = float(match.group(1))
    with capsys.disabled():
        print(f"\nsystemd-analyze security: {score} for {UNIT.name}")  # noqa: T201 - the figure to report
    assert score <= 2.0


def test_the_unit_runs_the_service_as_its_own_user_under_notify() -> None:
    """Type=notify with a watchdog, a dedicated user, mounts required, only CAP_LEASE."""
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=120",
        "User=user-import",
        "RequiresMountsFor=/srv/sftp /var/lib/user-import",
        "CapabilityBoundingSet=CAP_LEASE",
        "NoNewPrivileges=yes",
    ):
        assert line in text.splitlines()


@pytest.mark.integration
def test_the_sshd_snippet_passes_sshd_t(tmp_path: Path) -> None:
    """Sshd -t accepts a configuration that includes the snippet."""
    sshd, keygen = require_sshd(), require("ssh-keygen")
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host")], check=True
    )
    main = tmp_path / "sshd_config"
    main.write_text(f"HostKey {tmp_path / 'host'}\nInclude {SNIPPET}\n")
    result = subprocess.run(
        [sshd, "-t", "-f", str(main)], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_force_command_denies_links_first_within_nine_arguments() -> None:
    """-P comes first: OpenSSH before 10.4 drops internal-sftp arguments after the ninth."""
    (line,) = [
        ln for ln in SNIPPET.read_text().splitlines() if ln.strip().startswith("ForceCommand")
    ]
    words = shlex.split(line)[1:]
    assert words[:3] == ["internal-sftp", "-P", "symlink,hardlink"]
    assert len(words) - 1 <= 9
    assert "-l" in words
    assert words[words.index("-l") + 1] == "INFO"


def test_the_example_configuration_loads() -> None:
    """deploy/watcher.toml is a valid configuration."""
    config = load_config(DEPLOY / "watcher.toml")
    assert config.service.state_dir == Path("/var/lib/user-import")
    assert config.email is not None
