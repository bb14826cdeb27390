"""The socket a chroot's SFTP server logs to: ``<chroot>/dev/log``, bound by the service.

Each datagram arrives with its sender's credentials, which the kernel fills in
(``SO_PASSCRED``); :func:`watcher.core.sftplog.trusted` decides whom to believe
and :func:`watcher.core.sftplog.parse` what a message says.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import threading
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from watcher.core.sftplog import Datagram, parse, trusted

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.config import TenantConfig
    from watcher.core.sftplog import Transaction

__all__ = ["LogSocket", "listen_to"]

# struct ucred: pid, uid, gid.
_UCRED = struct.Struct("iII")


class LogSocket:
    """A datagram socket bound where a chroot's ``/dev/log`` is expected."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                path.unlink()  # a socket left by an earlier run
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.sock.bind(str(path))
        except OSError:
            self.sock.close()
            raise
        # The chrooted sftp-server runs as the customer and must be able to send;
        # who sent each message is checked on receipt (see trusted()).
        os.chmod(path, 0o666)  # noqa: PTH101, S103 - the socket must accept any sender
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(1.0)

    def receive(self) -> Datagram | None:
        """One datagram with its sender, or None after a second of silence."""
        try:
            data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(_UCRED.size))
        except TimeoutError:
            return None
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, uid, _ = _UCRED.unpack(payload[: _UCRED.size])
                return Datagram(data=data, uid=uid, pid=pid)
        return Datagram(data=data, uid=None, pid=None)

    def listen(
        self,
        tenant: str,
        *,
        senders: frozenset[int],
        deliver: Callable[[Transaction], None],
        stop: threading.Event,
        log: FilteringBoundLogger,
    ) -> None:
        """Hand every transaction a trusted sender logs to ``deliver``, until ``stop`` is set.

        Runs in a thread of its own. Messages from any other account are
        dropped, and said once per account: a flood stays one line.
        """
        forgers: set[int | None] = set()
        while not stop.is_set():
            try:
                datagram = self.receive()
            except OSError:
                return
            if datagram is None:
                continue
            if not trusted(datagram, senders):
                if datagram.uid not in forgers:
                    forgers.add(datagram.uid)
                    log.warning(
                        "sftp.untrusted_sender", tenant=tenant, uid=datagram.uid, pid=datagram.pid
                    )
                continue
            transaction = parse(datagram.data)
            if transaction is not None:
                deliver(transaction)

    def close(self) -> None:
        """Close and remove the socket."""
        self.sock.close()
        # A folder removed or given away meanwhile (``watcher tenant remove``): nothing to tidy.
        with contextlib.suppress(OSError):
            self.path.unlink()

    @property
    def chroot_folder(self) -> PurePosixPath:
        """The chroot this socket serves (``<chroot>/dev/log``)."""
        return PurePosixPath(self.path.parent.parent)


def listen_to(
    tenant: TenantConfig,
    *,
    deliver: Callable[[Transaction], None],
    stop: threading.Event,
    log: FilteringBoundLogger,
) -> tuple[LogSocket, threading.Thread, PurePosixPath | None] | None:
    """Bind the tenant's log socket and listen on it in a thread of its own.

    Returns the socket, the thread, and the drop folder as the chrooted SFTP
    client sees it (the log names files so); None when the socket cannot be
    bound, which is logged.
    """
    path = tenant.sftp_log_socket
    assert path is not None  # noqa: S101 - the caller checked
    try:
        sock = LogSocket(path)
    except OSError as exc:
        log.error("sftp.socket_unavailable", tenant=tenant.name, path=str(path), error=exc.strerror)
        return None
    # The SFTP server runs as the account that owns the drop folder.
    senders = frozenset({0, tenant.drop_dir.stat().st_uid})
    listener = threading.Thread(
        target=sock.listen,
        args=(tenant.name,),
        kwargs={"senders": senders, "deliver": deliver, "stop": stop, "log": log},
        name=f"sftp-log-{tenant.name}",
        daemon=True,
    )
    listener.start()
    chroot, drop = sock.chroot_folder, PurePosixPath(tenant.drop_dir)
    folder = PurePosixPath("/") / drop.relative_to(chroot) if drop.is_relative_to(chroot) else None
    log.info("sftp.listening", tenant=tenant.name, path=str(path))
    return sock, listener, folder
