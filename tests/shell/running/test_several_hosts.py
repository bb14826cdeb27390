"""Several instances on one PostgreSQL: tenants spread, a killed owner's tenant taken over.

Two real ``watcher run`` processes share one drop-folder tree, one state
folder and one database (a throwaway cluster), as two SFTP hosts on shared
storage would; the API and SMTP servers are real loopback servers.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import structlog

from tests.support import OPSCOM_SCHEMA, users_csv
from tests.support.apiserver import ApiServer, Reply
from tests.support.smtpserver import SmtpServer
from watcher.shell.running.ownership import EXIT_LEASE_LOST, Ownership
from watcher.shell.statedir import StateDir

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tests.support.postgres import Cluster
    from watcher.shell.journal import PostgresTarget

pytestmark = pytest.mark.integration

TENANTS = ("jcu", "uoft", "mcgill")
LEASE = 4.0


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it holds; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class Hosts:
    """Three tenants' folders, a shared state folder, and the instances running on them."""

    def __init__(
        self, root: Path, target: PostgresTarget, api_url: str, smtp_port: int, lease: float = LEASE
    ) -> None:
        self.root = root
        self.lease = lease
        self.target = target
        self.instances: dict[str, subprocess.Popen[str]] = {}
        for name in TENANTS:
            (root / "sftp" / name / "upload").mkdir(parents=True)
            (root / f"{name}.token").write_text(f"tok-{name}\n")
        self.api_url = api_url
        self.smtp_port = smtp_port

    def drop(self, tenant: str) -> Path:
        """A tenant's drop folder."""
        return self.root / "sftp" / tenant / "upload"

    def config(self, instance: str) -> Path:
        """The configuration of one instance: the same for all but its name."""
        assert self.target.password is not None
        text = f"""
[service]
state_dir = "state"
database = "{self.target.url}"
database_password_file = "{self.target.password.file}"
instance = "{instance}"
lease_timeout = "{self.lease:g}s"
batch_window = "1s"
settle_time = 0.5
rescan_interval = 2
heartbeat_interval = 3600
observer = "polling"

[email]
host = "127.0.0.1"
port = {self.smtp_port}
timeout = 5
"""
        for name in TENANTS:
            text += f"""
[[tenant]]
name = "{name}"
drop_dir = "sftp/{name}/upload"
schema = "{OPSCOM_SCHEMA}"
failed_import_email = "registrar@{name}.example"
reply_to = "Import Admin <admin@{name}.example>"

[tenant.api]
url = "{self.api_url}"
token_file = "{name}.token"
concurrency = 2
timeout = 5
max_attempts = 2
max_retry_time = 5
"""
        path = self.root / f"{instance}.toml"
        path.write_text(text)
        return path

    def start(self, instance: str) -> subprocess.Popen[str]:
        """Start ``watcher run`` for ``instance``; its log goes to a file."""
        with (self.root / f"{instance}.log").open("a") as log:  # the child keeps its own copy
            process = subprocess.Popen(
                [sys.executable, "-m", "watcher", "run", "--config", str(self.config(instance))],
                stdout=log, stderr=subprocess.STDOUT, text=True, cwd=self.root,
                env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
            )  # fmt: skip
        self.instances[instance] = process
        return process

    def events(self, instance: str) -> list[dict[str, Any]]:
        """The JSON lines an instance logged."""
        lines = (self.root / f"{instance}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def owners(self) -> dict[str, str]:
        """Each tenant's owner with a live lease, from the database."""
        with psycopg.connect(
            self.target.url, password=_password(self.target), autocommit=True
        ) as db:
            try:
                rows = db.execute(
                    "SELECT tenant, instance FROM owners"
                    " WHERE expires_at >= extract(epoch from clock_timestamp())"
                ).fetchall()
            except psycopg.errors.UndefinedTable:  # no instance has started yet
                return {}
        return dict(rows)

    def archived(self, tenant: str) -> list[str]:
        """The stems of the uploads in a tenant's .bak (not failure lists or results)."""
        bak = self.drop(tenant) / ".bak"
        if not bak.is_dir():
            return []
        return sorted(
            p.name.split(".", 1)[0]
            for p in bak.iterdir()
            if p.name.endswith(".csv") and not p.name.endswith(".failures.csv")
        )

    def stop_all(self) -> None:
        """SIGTERM every instance still running and wait for it."""
        for process in self.instances.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.instances.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def rows_by_state(hosts: Hosts, tenant: str) -> dict[str, int]:
    """A tenant's journaled rows, counted by state: nothing pending, nothing lost."""
    with psycopg.connect(hosts.target.url, password=_password(hosts.target)) as db:
        found = db.execute(
            "SELECT r.state, COUNT(*) FROM rows AS r JOIN files AS f ON f.id = r.file_id"
            " WHERE f.tenant = %s GROUP BY r.state",
            (tenant,),
        ).fetchall()
    return dict(found)


def _password(target: PostgresTarget) -> str:
    assert target.password is not None
    return target.password.reveal()


@pytest.fixture
def slow_api() -> Iterator[ApiServer]:
    """The API, answering each user after 20 ms: an import of 400 users takes seconds."""

    def respond(_: dict[str, Any], __: int) -> Reply:
        return Reply(delay=0.02)

    with ApiServer(respond) as api:
        yield api


def test_tenants_spread_and_a_killed_owners_tenant_is_finished_by_the_other(
    tmp_path: Path, postgres_cluster: Cluster, slow_api: ApiServer
) -> None:
    """SIGKILL mid-import: the other instance takes the tenant within the lease and finishes.

    Every user reaches the API, none more than once beyond the requests in
    flight; the file is archived once; one email for the batch.
    """
    with SmtpServer() as smtp:
        hosts = Hosts(tmp_path, postgres_cluster.fresh(), slow_api.url, smtp.port)
        try:
            hosts.start("a")
            wait_for(lambda: len(hosts.owners()) == 3, 20, "instance a to own every tenant")
            hosts.start("b")
            wait_for(
                lambda: set(hosts.owners().values()) == {"a", "b"},
                30,
                "the tenants to spread over both instances",
            )
            owners = hosts.owners()
            victim = next(t for t, owner in owners.items() if owner == "a")
            rows = 400
            start = 10_000 * TENANTS.index(victim)
            (hosts.drop(victim) / "users.csv").write_text(
                users_csv(rows, bad_every=50, start=start)
            )
            valid = {f"U-{i:05d}" for i in range(start, start + rows) if i % 50}
            wait_for(lambda: len(slow_api.ids()) >= 60, 30, "the import to be under way")
            hosts.instances["a"].send_signal(signal.SIGKILL)
            hosts.instances["a"].wait(timeout=10)
            killed_at = time.monotonic()
            wait_for(lambda: hosts.owners().get(victim) == "b", LEASE * 3, "b to take over")
            took = time.monotonic() - killed_at
            wait_for(lambda: hosts.archived(victim) == ["users"], 60, "the file archived")
            wait_for(lambda: len(smtp.messages) == 1, 30, "the failure report")
            # The others' tenants go on: a file for every tenant is imported by b.
            for tenant in TENANTS:
                if tenant != victim:
                    first = 10_000 * TENANTS.index(tenant)
                    (hosts.drop(tenant) / "more.csv").write_text(users_csv(5, start=first))
            others = [t for t in TENANTS if t != victim]
            wait_for(
                lambda: all(hosts.archived(t) == ["more"] for t in others), 30, "more.csv archived"
            )
        finally:
            hosts.stop_all()
        ids = collections.Counter(slow_api.ids())
        messages = smtp.messages
    # Within the lease timeout, give or take the test's own polling of the database.
    assert took <= LEASE + 1.0, f"taken over {took:.1f} s after the kill"
    assert valid <= set(ids)
    # Outcomes are journaled every 500 rows: what was answered since the last
    # record, and the requests in flight, are sent once more; nobody twice more.
    assert max(ids[i] for i in valid) <= 2
    assert sum(ids[i] - 1 for i in valid) <= 500 + 2
    assert rows_by_state(hosts, victim) == {"imported": len(valid), "failed": rows - len(valid)}
    assert len(messages) == 1
    assert messages[0]["To"] == f"registrar@{victim}.example"
    b_events = [e["event"] for e in hosts.events("b")]
    assert "tenant.taken_over" in b_events
    assert hosts.instances["b"].returncode == 0


def test_a_database_restart_mid_batch_is_ridden_out(
    tmp_path: Path, postgres_cluster: Cluster, slow_api: ApiServer
) -> None:
    """The server restarts while a batch imports: the instance reconnects and finishes it."""
    with SmtpServer() as smtp:
        # A lease long enough to ride out the restart (an instance gives up after half).
        hosts = Hosts(tmp_path, postgres_cluster.fresh(), slow_api.url, smtp.port, lease=20.0)
        try:
            hosts.start("a")
            wait_for(lambda: len(hosts.owners()) == 3, 20, "instance a to own every tenant")
            (hosts.drop("jcu") / "users.csv").write_text(users_csv(300, bad_every=50))
            wait_for(lambda: len(slow_api.ids()) >= 40, 30, "the import to be under way")
            postgres_cluster.stop("fast")
            time.sleep(1.0)
            postgres_cluster.start()
            wait_for(lambda: hosts.archived("jcu") == ["users"], 60, "the file archived")
            wait_for(lambda: len(smtp.messages) == 1, 30, "the failure report")
            assert hosts.instances["a"].poll() is None, "the instance died with the database"
        finally:
            hosts.stop_all()
        ids = collections.Counter(slow_api.ids())
    valid = {f"U-{i:05d}" for i in range(300) if i % 50}
    assert valid <= set(ids)
    events = [e["event"] for e in hosts.events("a")]
    assert "database.unavailable" in events or "batch.failed" in events
    assert hosts.instances["a"].returncode == 0


def test_an_instance_whose_lease_is_taken_stops_at_once(postgres_cluster: Cluster) -> None:
    """A renewal that finds a tenant another's (a stall outlived the lease): exit status 75."""
    target = postgres_cluster.fresh()
    fenced: list[int] = []
    ownership = Ownership(
        StateDir(Path("/nonexistent"), target, "a"),
        list(TENANTS),
        4.0,
        inbox=queue.Queue(),
        log=structlog.get_logger(),
        fence=fenced.append,
    )
    assert ownership.start() == frozenset(TENANTS)
    try:
        with psycopg.connect(target.url, password=_password(target), autocommit=True) as db:
            db.execute("UPDATE owners SET instance = 'b' WHERE tenant = 'uoft'")
        wait_for(lambda: fenced == [EXIT_LEASE_LOST], 5, "the instance to stop")
    finally:
        ownership.stop()


def test_process_leaves_a_tenant_another_instance_runs_and_status_names_the_owner(
    tmp_path: Path, postgres_cluster: Cluster, slow_api: ApiServer
) -> None:
    """``watcher process`` on a tenant a live instance owns is refused; status says who owns it."""
    with SmtpServer() as smtp:
        hosts = Hosts(tmp_path, postgres_cluster.fresh(), slow_api.url, smtp.port)
        try:
            hosts.start("a")
            wait_for(lambda: len(hosts.owners()) == 3, 20, "instance a to own every tenant")
            (hosts.drop("jcu") / "x.csv").write_text(users_csv(2))
            command = [sys.executable, "-m", "watcher"]
            refused = subprocess.run(
                [*command, "process", "--config", str(hosts.config("b")), "--tenant", "jcu",
                 str(hosts.drop("jcu") / "x.csv")],
                capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60,
            )  # fmt: skip
            shown = subprocess.run(
                [*command, "status", "--config", str(hosts.config("b")), "--json"],
                capture_output=True, text=True, check=False, cwd=tmp_path, timeout=60,
            )  # fmt: skip
        finally:
            hosts.stop_all()
    assert refused.returncode == 2, refused.stderr
    assert "another instance runs jcu now" in refused.stderr
    status = json.loads(shown.stdout)
    assert status["instance"] == "b"
    owners = {name: t["owner"] for name, t in status["tenants"].items()}
    assert {o["instance"] for o in owners.values()} == {"a"}
    assert all(o["live"] and 0 < o["expires_in"] <= 3.0 for o in owners.values())


def test_a_tenant_removed_while_running_gives_its_lease_up(
    tmp_path: Path, postgres_cluster: Cluster, slow_api: ApiServer
) -> None:
    """The configuration loses a tenant: the instance lets it go and no longer holds its lease."""
    with SmtpServer() as smtp:
        hosts = Hosts(tmp_path, postgres_cluster.fresh(), slow_api.url, smtp.port)
        try:
            hosts.start("a")
            wait_for(lambda: len(hosts.owners()) == 3, 20, "instance a to own every tenant")
            config = tmp_path / "a.toml"
            text = config.read_text()
            cut = text.index('\n[[tenant]]\nname = "mcgill"')
            config.write_text(text[:cut] + text[text.index("max_retry_time = 5", cut) + 18 :])
            wait_for(
                lambda: any(e["event"] == "tenant.removed" for e in hosts.events("a")),
                20,
                "the configuration read again",
            )
            wait_for(lambda: "mcgill" not in hosts.owners(), 20, "the lease given up")
            owners = hosts.owners()
        finally:
            hosts.stop_all()
    assert owners == {"jcu": "a", "uoft": "a"}
    assert not any(e["event"] == "lease.lost" for e in hosts.events("a"))
