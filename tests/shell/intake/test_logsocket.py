"""The socket a chroot's SFTP server logs to, bound by the service."""

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

from tests.support import require_root
from watcher.core.sftplog import Datagram, trusted
from watcher.shell.intake.logsocket import LogSocket

pytestmark = pytest.mark.integration


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
