"""Fixtures every test may use."""

from __future__ import annotations

import socket
import subprocess
from typing import TYPE_CHECKING

import pytest
import structlog

from tests.support import OPSCOM_SCHEMA
from tests.support.postgres import Cluster, require_postgres
from watcher.core.schema_parser import load_schema

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from watcher.core.schema import Schema
    from watcher.shell.journal import JournalAt


@pytest.fixture(scope="session")
def opscom() -> Schema:
    """The shipped OPS-COM schema."""
    return load_schema(OPSCOM_SCHEMA)


@pytest.fixture(autouse=True)
def _servers_and_subprocesses_are_integration(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that starts a subprocess or binds a socket must be marked ``integration``.

    So ``pytest -m "not integration"`` stays the fast suite: outside that
    marker, starting a process or a server fails the test and says why.
    """
    if request.node.get_closest_marker("integration") is not None:
        return
    where = request.node.nodeid

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError(f"{where} starts a subprocess or a server: mark it integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(autouse=True)
def _each_test_starts_with_structlogs_defaults() -> Iterator[None]:
    """A test that configures logging (a command run in-process) leaves it as it found it.

    Otherwise its level (info) filters the debug events a later test captures.
    """
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One PostgreSQL server for the whole run; each test takes a schema of its own."""
    cluster = Cluster(require_postgres())
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
def journal_at(request: pytest.FixtureRequest, tmp_path: Path) -> JournalAt:
    """Where a fresh journal goes: a SQLite file, then (integration) a PostgreSQL schema."""
    if request.param == "sqlite":
        return tmp_path / "journal.sqlite"
    cluster: Cluster = request.getfixturevalue("postgres_cluster")
    return cluster.fresh()
