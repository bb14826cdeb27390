"""Tenants added, changed and removed while the service runs: no restart, nothing dropped."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import pytest

from tests.shell.running.test_service import FAST, archived, events, named, running, wait_for
from tests.support import OPSCOM_SCHEMA, Site, users_csv
from watcher.config import load_config
from watcher.errors import ConfigError
from watcher.shell.running.reload import Reload, Watched, tenants_changed
from watcher.shell.statedir import StateDir
from watcher.shell.web.status import gather

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["events"]  # the fixture, shared with the service's tests


def tenant_file(folder: Path, name: str, drop: Path, extra: str = "") -> Path:
    """A tenants.d file as ``watcher tenant add`` writes one."""
    path = folder / f"{name}.toml"
    path.write_text(
        f'[[tenant]]\nname = "{name}"\ndrop_dir = "{drop}"\nschema = "{OPSCOM_SCHEMA}"\n'
        f'failed_import_email = "r@{name}.example"\nreply_to = "a@{name}.example"\n{extra}'
    )
    return path


def with_includes(site: Site) -> Path:
    """The site's configuration, also reading tenants.d/*.toml; the folder."""
    site.config.write_text('include = ["tenants.d/*.toml"]\n' + site.config.read_text())
    folder = site.root / "tenants.d"
    folder.mkdir()
    return folder


def test_what_a_changed_configuration_changes_in_the_tenants(tmp_path: Path) -> None:
    """Added, changed and removed tenants; [service] changed is for the next start only."""
    site = Site(tmp_path)
    folder = with_includes(site)
    tenant_file(folder, "uoft", tmp_path / "uoft")
    tenant_file(folder, "mcgill", tmp_path / "mcgill")
    running_config = load_config(site.config)
    watched = Watched(running_config)
    assert watched.look() is None  # nothing changed
    (folder / "mcgill.toml").unlink()
    tenant_file(folder, "uoft", tmp_path / "uoft", 'notify = "always"\n')
    tenant_file(folder, "ubc", tmp_path / "ubc")
    change = watched.look()
    assert change is not None
    assert (change.added, change.changed, change.removed) == (("ubc",), ("uoft",), ("mcgill",))
    assert not change.restart_needed
    assert watched.config.tenant("uoft").notify == "always"
    assert watched.look() is None  # applied: nothing new until the files change again
    louder = dataclasses.replace(
        running_config, service=dataclasses.replace(running_config.service, batch_window=9.0)
    )
    assert tenants_changed(running_config, louder).restart_needed


def test_a_configuration_that_no_longer_loads_is_refused_and_the_running_one_kept(
    tmp_path: Path,
) -> None:
    """A broken tenant file: refused with its problems; fixed, the next look applies it."""
    site = Site(tmp_path)
    folder = with_includes(site)
    watched = Watched(load_config(site.config))
    (folder / "bad.toml").write_text('[[tenant]]\nname = "Bad Name"\n')
    with pytest.raises(ConfigError):
        watched.look()
    assert watched.refused is not None
    assert "Bad Name" in watched.refused or "tenant[0]" in watched.refused
    assert [t.name for t in watched.config.tenants] == ["jcu"]  # the running one stays
    (folder / "bad.toml").unlink()
    tenant_file(folder, "ubc", tmp_path / "ubc")
    change = watched.look()
    assert change is not None
    assert change.added == ("ubc",)
    assert watched.refused is None


@pytest.mark.integration
def test_a_tenant_added_while_running_is_served_and_a_removed_one_let_go(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """tenants.d changes at a rescan: a new tenant's upload imported, a broken file refused."""
    site = Site(tmp_path, service=FAST)
    folder = with_includes(site)
    drop = tmp_path / "sftp" / "uoft" / "upload"
    drop.mkdir(parents=True)
    with running(site) as service:
        tenant_file(folder, "uoft", drop)
        wait_for(lambda: bool(named(events, "tenant.added")), 15)
        assert service.ownership.owned == {"jcu", "uoft"}  # alone: every tenant is its own
        (drop / "users.csv").write_text(users_csv(3))
        wait_for(lambda: (drop / ".bak").is_dir() and any((drop / ".bak").glob("*.result.json")))
        # A broken file is refused; the tenants running go on.
        (folder / "bad.toml").write_text('[[tenant]]\nname = "Bad Name"\n')
        wait_for(lambda: bool(named(events, "config.reload_refused")), 15)
        config = service.config
        state = StateDir.of(config.service)
        wait_for(lambda: bool(gather(config, state).get("config_refused")), 15)
        site.drop_file("a.csv", users_csv(2))
        wait_for(lambda: len(archived(site)) == 1, 20)
        (folder / "bad.toml").unlink()
        (folder / "uoft.toml").unlink()
        wait_for(lambda: bool(named(events, "tenant.removed")), 15)
        assert list(service.roster.tenants) == ["jcu"]
        assert service.ownership.owned == {"jcu"}
        assert not service.stop.is_set()
    (reloaded,) = [e for e in named(events, "config.reloaded") if e["added"]]
    assert reloaded["added"] == ("uoft",)


@pytest.mark.integration
def test_sighup_reads_the_configuration_at_once(
    tmp_path: Path, events: list[dict[str, Any]]
) -> None:
    """Reload on the queue (what SIGHUP puts there): no waiting for the next rescan."""
    site = Site(tmp_path, service=FAST.replace("rescan_interval = 2", "rescan_interval = 3600"))
    folder = with_includes(site)
    with running(site) as service:
        tenant_file(folder, "uoft", tmp_path / "uoft")
        service.inbox.put(Reload())
        wait_for(lambda: bool(named(events, "tenant.added")), 10)
        assert "uoft" in service.roster.tenants
