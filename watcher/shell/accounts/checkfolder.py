"""The check folder itself: made when missing, usable by the customer who owns the drop folder.

Onboarding makes ``check/`` as it makes the drop folder: the customer's,
shared with the service's group. A service that is not root may not give a
folder away, so one it makes is its own, and the customer gets the same
rights through a POSIX ACL, written here as the kernel's extended attribute
(``system.posix_acl_access``, its default twin for what is made inside).
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from structlog.typing import FilteringBoundLogger

    from watcher.config import TenantConfig

__all__ = ["ensure_check_folder"]

_ACL_ACCESS = "system.posix_acl_access"
_ACL_DEFAULT = "system.posix_acl_default"
# POSIX ACL entries (linux/posix_acl_xattr.h): tag, permissions, id.
_ACL_VERSION, _USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 2, 0x01, 0x02, 0x04, 0x10, 0x20
_UNDEFINED = 0xFFFFFFFF


def ensure_check_folder(tenant: TenantConfig, log: FilteringBoundLogger) -> bool:
    """Make ``check/`` when missing, usable by the customer; whether it is there.

    Onboarding makes it as it makes the drop folder: the customer's, shared
    with the service's group. The service may not give a folder away, so one
    it makes is its own, and the customer who owns the drop folder gets the
    same rights through an ACL (as root, it simply gives the folder away).
    """
    folder = tenant.check_dir
    try:
        if folder.is_dir():
            return True
        owner = tenant.drop_dir.stat()
        folder.mkdir(mode=0o2770)
    except FileExistsError:
        return folder.is_dir()
    except OSError as exc:
        log.error("check.folder_unusable", tenant=tenant.name, error=exc.strerror)
        return False
    try:
        os.chown(folder, owner.st_uid, owner.st_gid)
    except PermissionError:
        try:
            _share(folder, owner.st_uid)
        except OSError as exc:
            log.error("check.folder_unusable", tenant=tenant.name, error=exc.strerror)
            return True
    folder.chmod(0o2770)
    log.info("check.folder_made", tenant=tenant.name, path=str(folder))
    return True


def _share(folder: Path, uid: int) -> None:
    """Give ``uid`` read, write and search on ``folder``, and on what is made in it."""
    rwx = 7
    entries = [
        (_USER_OBJ, rwx, _UNDEFINED),
        (_USER, rwx, uid),
        (_GROUP_OBJ, rwx, _UNDEFINED),
        (_MASK, rwx, _UNDEFINED),
        (_OTHER, 0, _UNDEFINED),
    ]
    acl = struct.pack("<I", _ACL_VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)
    os.setxattr(folder, _ACL_ACCESS, acl)
    os.setxattr(folder, _ACL_DEFAULT, acl)
