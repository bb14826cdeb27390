"""The failure report: the CSV a customer fixes, and the email around it."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import TYPE_CHECKING

from tests.support import check
from watcher.core.records import Counts, Reason
from watcher.core.reporting import (
    ATTACHMENT_LIMIT,
    CELL_LIMIT,
    FileSummary,
    body,
    common_reasons,
    failure_csv,
    needs_report,
    neutralise,
    reason_lines,
    report_message,
    restore,
    subject,
)
from watcher.core.wording import counted

if TYPE_CHECKING:
    from watcher.core.schema import Schema


def rows_of(data: bytes) -> list[list[str]]:
    """Parse CSV bytes the way a spreadsheet would."""
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_formulas_are_neutralised_and_restored() -> None:
    """Cells a spreadsheet would run get an apostrophe; restore takes exactly it off."""
    for cell in ["=1+1", "+1-416-555-0100", "-5", "@SUM(A1)", "\tx", "\rx"]:
        assert neutralise(cell) == "'" + cell
        assert restore(neutralise(cell)) == cell
    assert neutralise("O'Brien") == "O'Brien"
    assert restore("'Ohana") == "'Ohana"


def test_the_csv_keeps_the_customers_columns_and_adds_ours() -> None:
    """Failed rows keep their header and values; our four columns follow."""
    data = failure_csv(
        ("Unique ID", "Email", "Phone"),
        [(3, ("U1", "bad", "+1 555")), (5, ("U2", None, "=cmd()"))],
        {
            3: [("email", "invalid_email", '"Email" is not a valid email address')],
            5: [
                ("unique_id", "duplicate_key", "repeats row 2"),
                (None, "api_rejected", "=HYPERLINK(x)"),
            ],
        },
    ).data
    assert data.startswith("\ufeff".encode())
    assert rows_of(data) == [
        [
            "Unique ID",
            "Email",
            "Phone",
            "import_row",
            "import_error_code",
            "import_error_field",
            "import_error",
        ],
        [
            "U1",
            "bad",
            "'+1 555",
            "3",
            "invalid_email",
            "email",
            '"Email" is not a valid email address',
        ],
        [
            "U2",
            "",
            "'=cmd()",
            "5",
            "duplicate_key; api_rejected",
            "unique_id; ",
            "repeats row 2; =HYPERLINK(x)",
        ],
    ]


def test_a_report_sent_back_is_read_without_our_columns(opscom: Schema) -> None:
    """A fixed report uploads as it is: our columns are skipped, apostrophes undone."""
    fixed = failure_csv(
        ("Unique ID", "Email", "Cell Phone"),
        [(4, ("U-1", "u1@x.org", "+1-416-555-0100"))],
        {4: [("email", "invalid_email", "was bad")]},
    ).data
    report = check(fixed, opscom)
    assert (report.file_errors, report.rows_valid) == ((), 1)
    assert report.api_rows().drop("row").rows(named=True) == [
        {
            "unique_id": "U-1",
            "login_source": "OPSCOM",
            "email": "u1@x.org",
            "phone_cell": "+1-416-555-0100",
        }
    ]


def test_a_report_sent_back_twice_does_not_double_our_columns() -> None:
    """Our columns from an earlier report are replaced, not repeated."""
    data = failure_csv(
        ("Unique ID", "import_row", "import_error"),
        [(2, ("U", "7", "old"))],
        {2: [(None, "x", "new")]},
    ).data
    assert rows_of(data)[0] == [
        "Unique ID",
        "import_row",
        "import_error_code",
        "import_error_field",
        "import_error",
    ]


def summary(
    name: str, *, failed: int = 0, total: int = 10, error: str | None = None
) -> FileSummary:
    """A file summary with ``failed`` rows of one reason."""
    return FileSummary(
        name=name,
        received_at=0.0,
        counts=Counts(total=total, imported=total - failed, failed=failed),
        file_error=error,
        reasons=(
            Reason(
                count=failed,
                field="email",
                code="invalid_email",
                example='"Email" is not a valid email address',
            ),
        )
        if failed
        else (),
        archive_name=f"{name}.X",
        failures_name=f"failed-{name}" if failed else None,
    )


def test_only_failures_need_a_report() -> None:
    """A batch where everything was imported sends no email."""
    assert not needs_report([summary("a.csv")])
    assert needs_report([summary("a.csv", failed=1)])
    assert needs_report([summary("b.csv", error="This is not a CSV file.")])


def test_the_subject_counts_files_and_users() -> None:
    """The subject counts files and every row, those of files that failed whole too."""
    assert subject([summary("a.csv", failed=3), summary("b.csv", failed=1, total=5)]) == (
        "User import: 4 of 15 users not imported"
    )
    unreadable = dataclasses.replace(
        summary("x.csv", error="broken quoting"), counts=Counts(total=5, failed=5)
    )
    assert subject([summary("a.csv", failed=2), unreadable]) == (
        "User import: 1 file not imported; 7 of 15 users not imported"
    )
    assert subject([summary("one.csv", failed=1, total=1)]) == (
        "User import: 1 of 1 user not imported"
    )


def test_common_reasons_say_how_often_with_an_example_message() -> None:
    """A rule's sentence stands for all its rows; one naming other rows says how many are alike."""
    reasons = (
        Reason(count=3, field="email", code="invalid_email", example="m1"),
        Reason(count=4, field="unique_id", code="duplicate_key", example="repeats row 9"),
        Reason(count=1, field=None, code="too_few_fields", example="has 2 values"),
    )
    assert common_reasons(reasons) == [
        (3, "m1"),
        (4, "repeats row 9 (and 3 more like it)"),
        (1, "has 2 values"),
    ]
    assert reason_lines(common_reasons(reasons)) == [
        "    3 rows: m1",
        "    4 rows: repeats row 9 (and 3 more like it)",
        "    1 row: has 2 values",
    ]


def test_the_message_goes_from_reply_to_with_the_csv_attached() -> None:
    """From and Reply-To are the admin address; the CSV is attached; the id is stable."""
    message = report_message(
        tenant="jcu",
        batch_id="b1",
        sender="Import Admin <admin@jcu.example>",
        recipient="registrar@jcu.example",
        files=[
            summary("users.csv", failed=2),
            summary("sheet.csv", error="This is not a CSV file."),
        ],
        attachments={"failed-users.csv": b"a\r\n"},
        now=0.0,
    )
    assert (message["From"], message["Reply-To"], message["To"]) == (
        "Import Admin <admin@jcu.example>",
        "Import Admin <admin@jcu.example>",
        "registrar@jcu.example",
    )
    assert message["Message-ID"] == "<b1.jcu@jcu.example>"
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "  10 rows: 8 imported, 2 not imported." in text
    assert '    2 rows: "Email" is not a valid email address' in text
    assert "To fix rows: open the attached file, correct" in text
    assert "To fix a file that was not imported: correct what is said of it above" in text
    assert "  The rows not imported are attached as failed-users.csv." in text
    assert "sheet.csv\n  Not imported: This is not a CSV file." in text
    assert [a.get_filename() for a in message.iter_attachments()] == ["failed-users.csv"]


def test_attachments_over_the_limit_point_to_bak() -> None:
    """A failure list too large to mail is named in .bak instead."""
    archived = "users.19700101T000000Z.0123abcd.csv"
    message = report_message(
        tenant="jcu",
        batch_id="b1",
        sender="admin@jcu.example",
        recipient="r@jcu.example",
        files=[dataclasses.replace(summary("users.csv", failed=2), archive_name=archived)],
        attachments={"failed-users.csv": b"x" * (ATTACHMENT_LIMIT + 1)},
        now=0.0,
    )
    assert list(message.iter_attachments()) == []
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert f"too large to attach: it is in .bak/{archived}.failures.csv" in text


def test_an_encrypted_uploads_list_too_large_to_mail_is_named_as_kept_or_not_kept() -> None:
    """Kept encrypted: named with .gpg; no key to encrypt it to: said not kept in plain."""
    archived = "users.19700101T000000Z.0123abcd.csv.gpg"
    texts = []
    for suffix in (".gpg", None):
        file = dataclasses.replace(
            summary("users.csv.gpg", failed=2), archive_name=archived, kept_suffix=suffix
        )
        message = report_message(
            tenant="jcu",
            batch_id="b1",
            sender="admin@jcu.example",
            recipient="r@jcu.example",
            files=[file],
            attachments={"failed-users.csv": b"x" * (ATTACHMENT_LIMIT + 1)},
            now=0.0,
        )
        body = message.get_body(preferencelist=("plain",))
        texts.append(body.get_content())  # type: ignore[union-attr]
    assert f"too large to attach: it is in .bak/{archived}.failures.csv.gpg" in texts[0]
    assert "it is not kept in your folder in plain" in texts[1]
    assert ".failures.csv" not in texts[1]


def test_reasons_beyond_the_five_shown_are_counted() -> None:
    """Seven kinds of failure: five listed, then 'and N more for 2 other reasons'."""
    reasons = tuple(
        Reason(count=7 - k, field=f"f{k}", code="required", example=f"m{k}") for k in range(7)
    )
    files = [dataclasses.replace(summary("a.csv", failed=28, total=30), reasons=reasons)]
    text = body(files, reply_to="a@b.c", attached=[], now=0.0)
    assert "    7 rows: m0" in text
    assert "    3 rows: m4" in text
    assert "    and 3 more for 2 other reasons" in text
    assert "Users that are not listed below" not in text


def test_with_the_services_own_address_the_report_comes_from_it_and_replies_go_to_the_tenant() -> (
    None
):
    """[email] from: From is the service's mailbox under the tenant's name; Reply-To the tenant's."""
    message = report_message(
        tenant="jcu",
        batch_id="b1",
        sender="Import Admin <admin@jcu.example>",
        recipient="registrar@jcu.example",
        files=[summary("users.csv", failed=1)],
        attachments={},
        now=0.0,
        service_address="imports@relay.example",
    )
    assert (message["From"], message["Reply-To"], message["Sender"]) == (
        "Import Admin <imports@relay.example>",
        "Import Admin <admin@jcu.example>",
        None,
    )
    assert message["Message-ID"] == "<b1.jcu@relay.example>"


def test_counts_are_worded_with_the_right_plural() -> None:
    """One file, two files, one batch, two batches, one entry, 2,500 rows."""
    assert [
        counted(1, "file"), counted(2, "file"), counted(1, "unfinished batch"),
        counted(2, "unfinished batch"), counted(3, "entry"), counted(2500, "row"),
    ] == ["1 file", "2 files", "1 unfinished batch", "2 unfinished batches", "3 entries", "2,500 rows"]  # fmt: skip


def test_a_huge_cell_is_cut_with_a_marker_and_the_list_stops_short_of_its_bytes() -> None:
    """Cells past CELL_LIMIT are cut and say so; rows stop before max_bytes."""
    huge = "x" * (CELL_LIMIT * 50)
    listed = failure_csv(
        ("Unique ID", "First Name"),
        [(n, (f"U{n}", huge)) for n in range(2, 12)],
        {n: [("first_name", "too_long", "too long")] for n in range(2, 12)},
        max_bytes=5 * CELL_LIMIT,
    )
    rows = rows_of(listed.data)
    assert listed.rows == len(rows) - 1 == 4
    assert rows[1][1] == "x" * CELL_LIMIT + f" [cut: {CELL_LIMIT * 50:,} characters]"
    assert len(listed.data) <= 5 * CELL_LIMIT


def test_the_advice_on_fixing_speaks_only_of_what_the_report_holds() -> None:
    """No "open the attached file" without one: file errors only, or a list kept in .bak."""
    only_errors = body(
        [summary("empty.csv", error="The file is empty.")], reply_to="a@b.c", attached=[], now=0.0
    )
    assert "To fix rows" not in only_errors
    assert "attached" not in only_errors
    assert "To fix a file that was not imported" in only_errors
    kept = body(
        [dataclasses.replace(summary("a.csv", failed=2), failures_name="failed-a.csv")],
        reply_to="a@b.c",
        attached=[],
        now=0.0,
    )
    assert "To fix rows: open the list of rows not imported in .bak, correct" in kept
    assert "the attached file" not in kept
    assert "To fix a file that was not imported" not in kept
