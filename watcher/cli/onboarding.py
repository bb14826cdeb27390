"""``watcher tenant``: listing, adding and removing the tenants of this host, and FTPS."""

from __future__ import annotations

import dataclasses
import pwd
import sys
from typing import TYPE_CHECKING, cast

from watcher.cli.commands import EXIT_OK, EXIT_USAGE
from watcher.errors import WatcherError

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from watcher.shell.accounts.tenants import Layout, Protocol

__all__ = ["tenant", "tenant_list"]

_PROTOCOLS: dict[str, tuple[Protocol, ...]] = {
    "sftp": ("sftp",),
    "ftps": ("ftps",),
    "both": ("sftp", "ftps"),
}


def tenant(args: argparse.Namespace) -> int:
    """``watcher tenant add``, ``ftps`` and ``remove``: onboard, open FTPS, remove."""
    from watcher.shell.accounts.tenants import Layout, remove  # noqa: PLC0415 - keeps start-up lean

    layout = Layout(
        config=args.config.resolve(),
        sftp_root=args.sftp_root.resolve(),
        keys_dir=args.keys_dir.resolve(),
        group=args.group,
        service_user=args.service_user,
    )
    made = None
    if args.action == "add":
        found = _add(args, layout)
        if found is None:
            return EXIT_USAGE
        steps, made = found
    elif args.action == "ftps":
        from watcher.shell.accounts.ftpsaccounts import read_password  # noqa: PLC0415
        from watcher.shell.accounts.tenants import give_ftps  # noqa: PLC0415

        password = read_password(args.password_file) if args.password_file else None
        steps, made = give_ftps(layout, args.name, password)
    else:
        steps = remove(layout, args.name, purge=args.purge)
    for step in steps:
        print(f"  {step}")
    if made is not None:
        print(f"FTPS password for {args.name} (shown once, kept only as a hash): {made}")
    if args.action == "add":
        _print_encryption_key(layout.config)
    print(
        f"The running service applies it within {_rescan(layout.config):.0f} seconds (its next "
        "rescan), or at once after: systemctl reload user-import-watcher"
    )
    return EXIT_OK


def _print_encryption_key(config: Path) -> None:
    """The service's public key, for a customer who encrypts uploads (with a keyring)."""
    from watcher.config import load_config  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.pipeline.openpgp import public_key  # noqa: PLC0415

    try:
        home = load_config(config).service.gnupg_home
    except WatcherError:
        return
    key = public_key(home) if home is not None else None
    if key is not None:
        print(
            "For the customer, to encrypt uploads to (gpg --import this, then "
            "gpg --encrypt --recipient <its address> users.csv):"
        )
        print(key, end="")


def _rescan(config: Path) -> float:
    """How often the service looks at its configuration (the default, if it cannot be read)."""
    from watcher.config import ServiceConfig, load_config  # noqa: PLC0415 - keeps start-up lean

    try:
        return load_config(config).service.rescan_interval
    except WatcherError:
        default = {f.name: f.default for f in dataclasses.fields(ServiceConfig)}
        return float(cast("float", default["rescan_interval"]))


def _add(args: argparse.Namespace, layout: Layout) -> tuple[list[str], str | None] | None:
    from watcher.shell.accounts.ftpsaccounts import read_password  # noqa: PLC0415
    from watcher.shell.accounts.tenants import NewTenant, add  # noqa: PLC0415

    protocols = _PROTOCOLS[args.protocol]
    key = None
    if args.key is not None:
        try:
            key = args.key.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"watcher: {args.key}: {exc.strerror}", file=sys.stderr)
            return None
    elif "sftp" in protocols:
        print("watcher: an SFTP tenant needs --key (the customer's public key)", file=sys.stderr)
        return None
    password = read_password(args.password_file) if args.password_file else None
    return add(
        layout,
        NewTenant(
            name=args.name,
            public_key=key,
            protocols=protocols,
            password=password,
            failed_import_email=args.failed_import_email,
            reply_to=args.reply_to,
            schema=(args.schema or layout.config.parent / "schema" / "opscom-users.json").resolve(),
            api_url=args.api_url,
            token_file=args.token_file.resolve() if args.token_file else None,
        ),
    )


def tenant_list(args: argparse.Namespace) -> int:
    """``watcher tenant list``: the configured tenants, their folders and doors."""
    from watcher.config import load_config  # noqa: PLC0415 - keeps start-up lean

    config = load_config(args.config)
    if not config.tenants:
        print(f"no tenants in {args.config}")
    for t in config.tenants:
        try:
            pwd.getpwnam(t.name)
            doors = [d for d, on in (("SFTP", t.sftp_log_socket), ("FTPS", t.ftps_user)) if on]
            account = f"{' and '.join(doors) or 'an'} account"
        except KeyError:
            account = "no account on this host"
        where = t.api.url if t.api else "embedded store"
        folder = "" if t.drop_dir.is_dir() else " (MISSING)"
        print(f"{t.name:<20} {t.drop_dir}{folder}  {account}; users to {where}")
    return EXIT_OK
