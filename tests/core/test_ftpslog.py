"""vsftpd's transfer log: the lines measured on vsftpd 3.0.3, and names with hidden bytes."""

from __future__ import annotations

import pytest

from watcher.core.ftpslog import Transfer, matches, parse, renamed, resolve

STAMP = "Wed Dec  2 06:24:26 2026"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            '[pid 15737] [jcu] OK UPLOAD: Client "127.0.0.1", "/upload/b.csv", 14 bytes, 0.30Kbyte/sec',
            Transfer(kind="upload_ok", pid=15737, user="jcu", client="127.0.0.1",
                     path="/upload/b.csv", size=14),
        ),
        (
            ('[pid 15843] [jcu] FAIL UPLOAD: Client "127.0.0.1", "/upload/big.csv", 80005 bytes, '
             "154.08Kbyte/sec"),
            Transfer(kind="upload_failed", pid=15843, user="jcu", client="127.0.0.1",
                     path="/upload/big.csv", size=80005),
        ),
        (
            '[pid 15737] [jcu] FAIL UPLOAD: Client "127.0.0.1", "/../x.csv", 0.00Kbyte/sec',
            Transfer(kind="upload_failed", pid=15737, user="jcu", client="127.0.0.1",
                     path="/../x.csv"),
        ),
        (
            '[pid 16084] [jcu] OK RENAME: Client "127.0.0.1", "/upload/r.csv.part /upload/r.csv"',
            Transfer(kind="rename", pid=16084, user="jcu", client="127.0.0.1",
                     path="/upload/r.csv.part /upload/r.csv"),
        ),
        (
            '[pid 16084] [jcu] OK DELETE: Client "127.0.0.1", "/upload/r.csv"',
            Transfer(kind="delete", pid=16084, user="jcu", client="127.0.0.1", path="/upload/r.csv"),
        ),
        (
            '[pid 16084] [jcu] OK MKDIR: Client "127.0.0.1", "/upload/.bak"',
            Transfer(kind="mkdir", pid=16084, user="jcu", client="127.0.0.1", path="/upload/.bak"),
        ),
        (
            '[pid 15600] [jcu] OK LOGIN: Client "127.0.0.1"',
            Transfer(kind="login", pid=15600, user="jcu", client="127.0.0.1"),
        ),
        (
            '[pid 16247] [jcu] FAIL LOGIN: Client "::ffff:10.0.0.7"',
            Transfer(kind="login_failed", pid=16247, user="jcu", client="::ffff:10.0.0.7"),
        ),
        (
            ('[pid 16084] [jcu] OK UPLOAD: Client "127.0.0.1", "/upload/we"ird?? name.csv", '
             "12 bytes, 1.89Kbyte/sec"),
            Transfer(kind="upload_ok", pid=16084, user="jcu", client="127.0.0.1",
                     path='/upload/we"ird?? name.csv', size=12),
        ),
    ],
)  # fmt: skip
def test_each_measured_line_is_read(line: str, expected: Transfer) -> None:
    """Uploads (whole, failed, refused), renames, deletes, folders and logins."""
    assert parse(f"{STAMP} {line}\n") == expected


@pytest.mark.parametrize(
    "line",
    [
        '[pid 15601] CONNECT: Client "127.0.0.1"',
        '[pid 15674] [jcu] DEBUG: Client "127.0.0.1", "No SSL session reuse on data channel."',
        '[pid 1] [jcu] OK DOWNLOAD: Client "127.0.0.1", "/upload/a.csv", 4 bytes, 1.00Kbyte/sec',
        '[pid 1] [jcu] OK UPLOAD: Client "127.0.0.1", "/upload/a.csv" and then some',
        "not a vsftpd line at all",
        "",
    ],
)
def test_other_lines_say_nothing(line: str) -> None:
    """Connections, debug lines, downloads and anything malformed are no transfer."""
    assert parse(f"{STAMP} {line}" if line.startswith("[") else line) is None


def test_a_name_written_with_question_marks_is_found_among_the_folders_names() -> None:
    """Vsftpd writes each byte of é as ?: the one name with bytes there is the file."""
    assert matches('we"ird?? name.csv', 'we"irdé name.csv')
    assert not matches("we?rd.csv", "weird.csv")  # i is printable: it would be written
    assert matches("what?.csv", "what?.csv")  # a ? of the name's own
    assert resolve("caf??.csv", ["cafe.csv", "café.csv", "other.csv"]) == "café.csv"
    assert resolve("plain.csv", []) == "plain.csv"
    assert resolve("??.csv", ["é.csv", "ü.csv"]) is None  # two candidates: none is taken
    assert resolve("??.csv", []) is None


def test_a_rename_is_split_at_the_new_paths_start() -> None:
    """Names with " /" in them are split where the new name is a file in the folder."""
    assert renamed("/upload/a.part /upload/a.csv", "/upload", []) == (
        "/upload/a.part",
        "/upload/a.csv",
    )
    text = "/upload/x /y.part /upload/x /y.csv"
    assert renamed(text, "/upload", ["x /y.csv"]) is None  # "/y.csv" is not in the folder
    assert renamed("/upload/a /b /upload/c", "/upload", ["c"]) == ("/upload/a /b", "/upload/c")
    assert renamed("/upload/a /b /upload/c", "/upload", []) is None
