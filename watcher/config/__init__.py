"""The service configuration: a TOML file, checked when it is loaded.

Every problem is reported with its key (``tenant[0] "jcu".api.url: ...``) and
all of them at once. Relative paths resolve against the configuration file's
folder. Secrets (API tokens, the SMTP password) are never written in the file
itself: a ``*_file`` key names a file holding the secret, a ``*_env`` key an
environment variable; either is read each time it is used, so rotating a token
needs no restart.

The values (:mod:`~watcher.config.model`) are separate from the reading of the
file (:mod:`~watcher.config.loading`, :mod:`~watcher.config.values`) and from
what is checked beyond it (:mod:`~watcher.config.checks`).
"""

from __future__ import annotations

from watcher.config.checks import exposed_secrets, folder_warnings, preflight
from watcher.config.loading import load_config
from watcher.config.model import (
    ApiConfig,
    Config,
    EmailConfig,
    Observer,
    Secret,
    ServiceConfig,
    TenantConfig,
)
from watcher.config.values import parse_duration, parse_size

__all__ = [
    "ApiConfig",
    "Config",
    "EmailConfig",
    "Observer",
    "Secret",
    "ServiceConfig",
    "TenantConfig",
    "exposed_secrets",
    "folder_warnings",
    "load_config",
    "parse_duration",
    "parse_size",
    "preflight",
]
