"""The notice a customer gets when an import is held: counts and column names, no values."""

from __future__ import annotations

from watcher.core.changes import ChangeSummary
from watcher.core.notices import hold_message, strays_id, strays_message

CHANGES = ChangeSummary(
    rows=2400,
    new=10,
    unchanged=1290,
    changed=1100,
    known=2000,
    columns=(("first_name", 1050), ("last_name", 1049)),
)


def test_the_notice_says_what_was_held_and_why() -> None:
    """Subject and body count the users, name the columns and say what happens next."""
    message = hold_message(
        tenant="jcu",
        batch_id="b1",
        sender="Import Admin <admin@jcu.example>",
        recipient="registrar@jcu.example",
        files=[("users.csv", 2400)],
        changes=CHANGES,
        allowed=0.2,
        received_at=0.0,
        now=0.0,
    )
    assert message["Subject"] == "User import on hold: it would change 1,100 of 2,000 users"
    assert (message["To"], message["Reply-To"]) == (
        "registrar@jcu.example",
        "Import Admin <admin@jcu.example>",
    )
    assert message["Message-ID"] == "<b1.held.jcu@jcu.example>"
    text = message.get_content()
    assert (
        "It would change 1,100 of the 2,000 users imported before (55%), more than the 20%" in text
    )
    assert "  first_name: 1,050 users\n  last_name: 1,049 users" in text
    assert "  users.csv: 2,400 rows" in text
    assert "Files you upload meanwhile wait\nbehind this one." in text
    # No contact configured: the notice names no one (not the tenant's own reply-to).
    assert "admin@jcu.example" not in text
    assert "If the file is wrong, upload the corrected file." in text


def test_the_notice_names_the_operator_who_decides_the_hold() -> None:
    """With [email] contact, a customer who sent the wrong file knows whom to tell."""
    message = hold_message(
        tenant="jcu",
        batch_id="b1",
        sender="Import Admin <admin@jcu.example>",
        recipient="registrar@jcu.example",
        files=[("users.csv", 2400)],
        changes=CHANGES,
        allowed=0.2,
        received_at=0.0,
        now=0.0,
        contact="Imports desk <imports@host.example>",
    )
    text = message.get_content()
    assert "write to imports@host.example to have it discarded" in text
    assert "admin@jcu.example" not in text


def test_files_in_a_subfolder_are_named_with_what_to_do_instead() -> None:
    """The notice names the files and says where to upload; the same files, the same id."""
    files = ["2026/users.csv", "old/staff.csv"]
    message = strays_message(
        tenant="jcu",
        sender="Import Admin <admin@jcu.example>",
        recipient="registrar@jcu.example",
        files=files,
        now=0.0,
    )
    assert message["Subject"] == "User import: 2 files in a subfolder not imported"
    text = message.get_content()
    assert "  2026/users.csv\n  old/staff.csv\n" in text
    assert "upload it to the drop folder itself, not to a folder inside it" in text
    assert message["Message-ID"] == f"<{strays_id(files)}.jcu@jcu.example>"
    assert strays_id(list(reversed(files))) == strays_id(files)
    assert strays_id(["2026/users.csv"]) != strays_id(files)
