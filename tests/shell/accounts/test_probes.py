"""check-config's probes against real SMTP and HTTP servers on loopback."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.support import Site
from tests.support.apiserver import ApiServer
from tests.support.smtpserver import SmtpServer, free_port
from watcher.cli import EXIT_OK, EXIT_USAGE
from watcher.config import load_config
from watcher.shell.accounts.probes import probe

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.integration


def check_config(site: Site, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `watcher check-config` on the site."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", "check-config", "--config", str(site.config), *extra],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_servers_that_answer_pass_and_nothing_is_sent(tmp_path: Path) -> None:
    """EHLO to the SMTP server and a connection to the API: no mail, no request."""
    with SmtpServer() as smtp, ApiServer() as api:
        site = Site(tmp_path, smtp_port=smtp.port, api_url=api.url)
        assert probe(load_config(site.config)) == []
        result = check_config(site)
    assert result.returncode == EXIT_OK, result.stderr
    assert (smtp.messages, api.requests) == ([], [])


def test_servers_that_do_not_answer_are_named_with_their_key(tmp_path: Path) -> None:
    """A closed SMTP port and a closed API port are each one problem."""
    smtp_port, api_port = free_port(), free_port()
    site = Site(tmp_path, smtp_port=smtp_port, api_url=f"http://127.0.0.1:{api_port}/push")
    assert probe(load_config(site.config)) == [
        f"email: 127.0.0.1:{smtp_port}: cannot connect (Connection refused)",
        f'tenant "jcu".api.url: cannot connect to 127.0.0.1:{api_port} (Connection refused)',
    ]
    result = check_config(site)
    assert result.returncode == EXIT_USAGE
    assert "cannot connect (Connection refused)" in result.stderr


def test_https_to_a_server_without_tls_is_a_problem(tmp_path: Path) -> None:
    """The TLS handshake is part of the probe."""
    with ApiServer() as api:
        site = Site(tmp_path, api_url=api.url.replace("http://", "https://"))
        (problem,) = probe(load_config(site.config))
    assert problem.startswith('tenant "jcu".api.url: cannot connect to 127.0.0.1:')


def test_offline_skips_the_probes(tmp_path: Path) -> None:
    """--offline checks the files only."""
    site = Site(tmp_path, smtp_port=free_port())
    result = check_config(site, "--offline")
    assert result.returncode == EXIT_OK, result.stderr


def test_a_drop_folder_without_onboarding_modes_is_warned_of(tmp_path: Path) -> None:
    """A folder made by hand (0755, no setgid) is a warning, not a failure."""
    site = Site(tmp_path)
    site.drop.chmod(0o755)
    result = check_config(site, "--offline")
    assert result.returncode == EXIT_OK, result.stderr
    assert "has mode 0755, not the 2770 onboarding gives" in result.stderr
    site.drop.chmod(0o2770)
    assert "onboarding gives" not in check_config(site, "--offline").stderr


def test_a_state_folder_that_cannot_be_made_fails_the_check(tmp_path: Path) -> None:
    """A state_dir under a plain file is named as a problem."""
    site = Site(tmp_path)
    (tmp_path / "blocker").write_text("")
    site.config.write_text(
        site.config.read_text().replace('state_dir = "state"', 'state_dir = "blocker/state"')
    )
    result = check_config(site, "--offline")
    assert result.returncode == EXIT_USAGE
    assert "does not exist and cannot be made here" in result.stderr
