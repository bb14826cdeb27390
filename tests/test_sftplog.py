"""Parsing OpenSSH's SFTP transaction log, and its socket."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

import pytest

from conftest import require_root
from watcher.core.sftplog import Datagram, Transaction, name_in, parse, trusted
from watcher.shell.logsocket import LogSocket


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


def test_the_socket_receives_datagrams_anyone_may_send(tmp_path: Path) -> None:
    """The socket is bound at <chroot>/dev/log, writable by the chrooted user."""
    path = tmp_path / "chroot" / "dev" / "log"
    sock = LogSocket(path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666
        assert sock.chroot_folder == PurePosixPath(tmp_path / "chroot")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b'internal-sftp[1]: remove name "/upload/a"', str(path))
        assert sock.receive() == Datagram(
            data=b'internal-sftp[1]: remove name "/upload/a"', uid=os.getuid(), pid=os.getpid()
        )
    finally:
        sock.close()
    assert not path.exists()


def test_only_the_tenants_account_and_root_are_trusted() -> None:
    """The kernel's credentials decide; the text of the message cannot."""
    senders = frozenset({0, 1001})
    message = b'internal-sftp[7]: forced close "/upload/v.csv" bytes read 0 written 9'
    assert trusted(Datagram(data=message, uid=1001, pid=7), senders)
    assert trusted(Datagram(data=message, uid=0, pid=8), senders)
    assert not trusted(Datagram(data=message, uid=1002, pid=7), senders)
    assert not trusted(Datagram(data=message, uid=None, pid=None), senders)


@pytest.mark.integration
def test_the_socket_tells_a_forged_sender_by_its_real_account() -> None:
    """A datagram sent by another local account (nobody) arrives with nobody's uid."""
    require_root("sending as another account")
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="watcher-sock-"))
    try:
        folder.chmod(0o755)
        sock = LogSocket(folder / "dev" / "log")
        (folder / "dev").chmod(0o755)
        try:
            script = (
                "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); "
                's.sendto(b\'internal-sftp[7]: forced close "/upload/v.csv" bytes read 0 '
                "written 9', sys.argv[1])"
            )
            subprocess.run(
                # The system's interpreter: nobody may not enter this checkout's venv.
                ["/usr/bin/python3", "-c", script, str(sock.path)],
                user=nobody.pw_uid, group=nobody.pw_gid, check=True, timeout=30,
            )  # fmt: skip
            received = sock.receive()
        finally:
            sock.close()
    finally:
        shutil.rmtree(folder)
    assert received is not None
    assert received.uid == nobody.pw_uid
    assert not trusted(received, frozenset({0, 1001}))


def test_a_socket_left_by_a_crashed_run_is_replaced(tmp_path: Path) -> None:
    """A stale socket file is removed and bound afresh; other files are not touched."""
    path = tmp_path / "dev" / "log"
    first = LogSocket(path)
    first.sock.close()  # the process died: the file stays
    assert stat.S_ISSOCK(path.stat().st_mode)
    second = LogSocket(path)
    second.close()
    path.write_text("not a socket")
    with pytest.raises(OSError, match="Address already in use"):
        LogSocket(path)
    assert path.read_text() == "not a socket"
