"""The terminal displays: ``watcher status`` (who owns each tenant, held batches, mail) and ``watcher validate``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.core.test_pages import tenant_status
from watcher.cli.display import status_summary, validation_summary
from watcher.core.reading import read_table
from watcher.core.schema_parser import load_schema, shipped_schema_path
from watcher.core.validation import validate

if TYPE_CHECKING:
    from watcher.core.documents import Status


def status(instance: str | None, **tenants: object) -> Status:
    """A running service's status with the given tenants' owners."""
    return {
        "running": True,
        "pid": 7,
        "status_age": 0.4,
        "instance": instance,
        "tenants": {name: tenant_status(owner=owner) for name, owner in tenants.items()},
    }


def test_each_tenant_says_which_instance_owns_it_and_how_its_lease_stands() -> None:
    """This instance, another one, a lease run out, and nobody: each said in words."""
    text = status_summary(
        status(
            "sftp-1",
            jcu={"instance": "sftp-1", "host": "h1", "live": True, "expires_in": 21.5},
            uoft={"instance": "sftp-2", "host": "h2", "live": True, "expires_in": 3.0},
            mcgill={"instance": "sftp-2", "host": None, "live": False, "expires_in": -4.0},
            ubc=None,
        )
    )
    assert "instance: sftp-1 (tenants are shared with other instances)" in text
    assert "  owner: sftp-1 on h1 (this instance), lease renewed (runs out in 21.5 s)" in text
    assert "  owner: sftp-2 on h2, lease renewed (runs out in 3 s)" in text
    assert "  owner: sftp-2, lease ran out 4 s ago: another instance takes it" in text
    assert "  owner: none (the next instance to look takes it)" in text


def test_without_a_shared_database_no_owner_is_shown() -> None:
    """One instance runs every tenant: nothing to say about owners."""
    text = status_summary(status(None, jcu=None))
    assert "owner" not in text
    assert "instance" not in text


def test_a_held_batch_comes_with_commands_that_can_be_pasted_as_they_are() -> None:
    """The tenant's own name and the configuration in use, never a placeholder."""
    held = {
        "id": "fae46d83-1111",
        "since": 0.0,
        "files": 1,
        "rows": 120,
        "changed": 60,
        "known": 120,
        "columns": ["email"],
        "reason": "changes",
        "deactivate": 0,
        "missing": 0,
    }
    text = status_summary(
        {
            "running": True,
            "pid": 7,
            "status_age": 0.4,
            "instance": None,
            "tenants": {"jcu": tenant_status(held=[held])},
        },
        config=Path("/etc/user import/watcher.toml"),
    )
    assert (
        "    watcher hold approve --config '/etc/user import/watcher.toml' --tenant jcu fae46d83"
        in text
    )
    assert (
        "    watcher hold discard --config '/etc/user import/watcher.toml' --tenant jcu fae46d83"
        in text
    )
    assert "NAME" not in text


def test_mail_waiting_says_since_when_and_why() -> None:
    """The outbox line of a tenant whose mail is stuck: since when, LATE, the last error."""
    stuck = tenant_status(
        outbox={
            "waiting": 1, "rejected": 0, "since": 0.0,
            "error": "421 service not available", "late": True,
        }
    )  # fmt: skip
    text = status_summary(
        {"running": True, "pid": 7, "status_age": 0.4, "instance": None, "tenants": {"jcu": stuck}}
    )
    assert (
        "  outbox: 1 waiting since 1970-01-01 00:00 UTC (LATE), last try: 421 service not "
        "available; 0 rejected"
    ) in text


def test_a_refused_configuration_is_said_first() -> None:
    """The service kept its configuration: status says a change was refused, and why."""
    refused = status(None, jcu=None)
    refused["config_refused"] = "tenants.d/bad.toml: tenant[0].name: must be lower-case letters"
    text = status_summary(refused)
    assert (
        "configuration: a change was REFUSED, the running one stays: tenants.d/bad.toml: "
        "tenant[0].name: must be lower-case letters"
    ) in text
    assert "REFUSED" not in status_summary(status(None, jcu=None))


def test_a_running_import_says_how_fast_the_api_answers() -> None:
    """The batch line carries the pace, so a slow import explains itself."""
    busy = tenant_status(batch_running=True, importing={"in_flight": 3, "limit": 3.5, "rate": 22.4})
    text = status_summary(
        {"running": True, "pid": 7, "status_age": 0.4, "instance": None, "tenants": {"jcu": busy}}
    )
    assert (
        "  a batch is running: 22 answers a second from the API, 3 in flight "
        "(the API's limit as learnt: 3.5)"
    ) in text


def test_a_file_refused_whole_says_its_rows_were_not_checked() -> None:
    """An unreadable file, and a readable one whose header fails, each in words."""
    schema = load_schema(shipped_schema_path())
    unreadable = validate(read_table(b"unique_id\n1\n2\n", max_rows=1, schema=schema), schema)
    assert validation_summary("u.csv", unreadable).splitlines()[0] == (
        "u.csv: cannot be imported, its rows were not checked"
    )
    headless = validate(read_table(b"nope\n1\n2\n", schema=schema), schema)
    assert validation_summary("h.csv", headless).splitlines()[0] == (
        "h.csv: cannot be imported, its 2 rows were not checked (utf-8)"
    )
