"""Parsing OpenSSH's SFTP transaction log, and whom to believe."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from watcher.core.sftplog import Datagram, Transaction, name_in, parse, trusted


@pytest.mark.parametrize(
    ("line", "transaction"),
    [
        (
            b'<38>Nov 22 05:58:57 internal-sftp[19092]: open "/upload/killed.csv" flags WRITE,CREATE,TRUNCATE mode 0644',
            Transaction(kind="open", pid=19092, path="/upload/killed.csv", writes=True),
        ),
        (
            b'<38>Nov 22 05:58:57 internal-sftp[19092]: open "/upload/x.csv" flags READ mode 0666',
            Transaction(kind="open", pid=19092, path="/upload/x.csv", writes=False),
        ),
        (
            b'<38>Nov 22 05:58:59 internal-sftp[19092]: forced close "/upload/killed.csv" bytes read 0 written 522240',
            Transaction(kind="forced_close", pid=19092, path="/upload/killed.csv", written=522240),
        ),
        (
            b'<38>Nov 22 05:59:17 internal-sftp[19158]: open "/upload/killed.csv" flags WRITE,APPEND,CREATE mode 0644',
            Transaction(kind="open", pid=19158, path="/upload/killed.csv", writes=True),
        ),
        (
            b'<38>Nov 22 05:59:18 internal-sftp[19158]: close "/upload/killed.csv" bytes read 0 written 26495306',
            Transaction(kind="close", pid=19158, path="/upload/killed.csv", written=26495306),
        ),
        (
            b'<38>Nov 22 05:59:18 internal-sftp[19158]: posix-rename old "/upload/x.csv.filepart" new "/upload/x.csv"',
            Transaction(
                kind="rename", pid=19158, path="/upload/x.csv.filepart", new_path="/upload/x.csv"
            ),
        ),
        (
            b'<38>Nov 22 05:59:18 internal-sftp[19158]: rename old "/upload/a" new "/upload/b"',
            Transaction(kind="rename", pid=19158, path="/upload/a", new_path="/upload/b"),
        ),
        (
            b'<38>Nov 22 05:59:18 internal-sftp[19158]: symlink old "/etc/passwd" new "/upload/evil2.csv"',
            Transaction(
                kind="symlink", pid=19158, path="/etc/passwd", new_path="/upload/evil2.csv"
            ),
        ),
        (
            b'<38>Nov 22 05:59:18 internal-sftp[1]: hardlink old "/upload/a" new "/upload/b"',
            Transaction(kind="hardlink", pid=1, path="/upload/a", new_path="/upload/b"),
        ),
        (
            b'<38>Nov 22 05:59:18 internal-sftp[1]: remove name "/upload/a.csv"',
            Transaction(kind="remove", pid=1, path="/upload/a.csv"),
        ),
        (
            b"<86>Nov 22 05:59:18 internal-sftp[7]: session opened for local user jcu from [127.0.0.1]",
            Transaction(kind="session_opened", pid=7, user="jcu"),
        ),
        (
            b"<38>Nov 22 05:59:18 internal-sftp[7]: Refusing denied request: symlink",
            Transaction(kind="refused", pid=7, request="symlink"),
        ),
        (
            b'internal-sftp[9]: close "/upload/he said \\"hi\\".csv" bytes read 0 written 5',
            Transaction(kind="close", pid=9, path='/upload/he said \\"hi\\".csv', written=5),
        ),
    ],
)
def test_each_transaction_is_parsed(line: bytes, transaction: Transaction) -> None:
    """Every logged operation the service uses becomes a value."""
    assert parse(line) == transaction


@pytest.mark.parametrize(
    "line", [b"", b"garbage", b"<38>Nov 22 05:59:18 sshd[1]: Accepted publickey", b"\xff\xfe"]
)
def test_other_messages_are_not_transactions(line: bytes) -> None:
    """Anything else in the log is ignored."""
    assert parse(line) is None


def test_names_are_taken_only_directly_in_the_folder() -> None:
    """Paths in subfolders or elsewhere are not drop-folder files."""
    folder = PurePosixPath("/upload")
    assert name_in("/upload/u.csv", folder) == "u.csv"
    assert name_in("/upload/.bak/u.csv", folder) is None
    assert name_in("/etc/passwd", folder) is None
    assert name_in("/upload", folder) is None


def test_only_the_tenants_account_and_root_are_trusted() -> None:
    """The kernel's credentials decide; the text of the message cannot."""
    senders = frozenset({0, 1001})
    message = b'internal-sftp[7]: forced close "/upload/v.csv" bytes read 0 written 9'
    assert trusted(Datagram(data=message, uid=1001, pid=7), senders)
    assert trusted(Datagram(data=message, uid=0, pid=8), senders)
    assert not trusted(Datagram(data=message, uid=1002, pid=7), senders)
    assert not trusted(Datagram(data=message, uid=None, pid=None), senders)
