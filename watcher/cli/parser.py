"""The ``watcher`` commands and their options, each with help and a default."""

from __future__ import annotations

import argparse
from pathlib import Path

from watcher import __version__
from watcher.cli import commands as handlers
from watcher.cli import holds, onboarding
from watcher.core.limits import MAX_ROWS

__all__ = ["build_parser"]

_DEFAULT_CONFIG = Path("/etc/user-import/watcher.toml")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="watcher",
        description="Turn CSV files dropped on an SFTP host into users in the User Import API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a CSV file against a header schema and list failing rows",
    )
    validate.add_argument("file", type=Path, metavar="FILE", help="the CSV file to check")
    validate.add_argument(
        "--schema",
        type=Path,
        default=None,
        metavar="PATH",
        help="the header schema (default: the shipped schema/opscom-users.json)",
    )
    validate.add_argument(
        "--json", action="store_true", help="print one JSON object instead of a summary"
    )
    validate.add_argument(
        "--max-rows",
        type=_positive,
        default=MAX_ROWS,
        metavar="N",
        help=f"refuse a file of more rows, as the service does (default: {MAX_ROWS:,}); "
        "lifting it costs memory for every row",
    )
    validate.set_defaults(handler=handlers.validate)

    check_schema = commands.add_parser(
        "check-schema", help="check header schema files and list every problem"
    )
    check_schema.add_argument(
        "paths", type=Path, nargs="+", metavar="PATH", help="schema files to check"
    )
    check_schema.set_defaults(handler=handlers.check_schema)

    check_config = commands.add_parser(
        "check-config", help="check the service configuration and what it refers to"
    )
    _config_argument(check_config)
    check_config.add_argument(
        "--offline",
        action="store_true",
        help="skip the SMTP and API probes (default: connect to each, sending nothing)",
    )
    check_config.set_defaults(handler=handlers.check_config)

    process = commands.add_parser(
        "process", help="process files of one tenant now, as one batch, as the service does"
    )
    _config_argument(process)
    process.add_argument(
        "--tenant", required=True, metavar="NAME", help="the tenant whose drop folder holds FILE"
    )
    process.add_argument(
        "--json",
        action="store_true",
        help="JSON log lines on standard output, as when it is not a terminal "
        "(default on a terminal: a summary, and warnings on standard error)",
    )
    process.add_argument(
        "--resend-all",
        action="store_true",
        help="send every valid row, also those unchanged since they were last imported "
        "(default: skip them, as the tenant's skip_unchanged says)",
    )
    process.add_argument(
        "files",
        type=Path,
        nargs="*",
        metavar="FILE",
        help="files in the drop folder (none: only finish what an earlier run left)",
    )
    process.set_defaults(handler=handlers.process)

    run = commands.add_parser("run", help="watch every tenant's drop folder and process uploads")
    _config_argument(run)
    run.add_argument("--once", action="store_true", help="process what is ready now, then exit")
    run.set_defaults(handler=handlers.run)

    demo = commands.add_parser(
        "demo", help="run the service on sample files in a local folder and show the results"
    )
    demo.add_argument(
        "--dir", type=Path, default=Path("demo"), metavar="DIR", help="where (default: ./demo)"
    )
    demo.set_defaults(handler=handlers.demo)

    status = commands.add_parser("status", help="show what each tenant is waiting for")
    _config_argument(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--tenant",
        metavar="NAME",
        default=None,
        help="one tenant, with its last 50 batches and rows per day (as its status page)",
    )
    status.set_defaults(handler=handlers.status)

    _tenant_parser(commands)
    _hold_parser(commands)
    return parser


def _hold_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hold = commands.add_parser(
        "hold", help="list, approve or discard batches held because they change too many users"
    )
    actions = hold.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the tenant's held batches and why they are held")
    approve = actions.add_parser("approve", help="import a held batch as if it was never held")
    discard = actions.add_parser(
        "discard", help="archive a held batch's files unimported, and tell the customer"
    )
    for action in (listing, approve, discard):
        _config_argument(action)
        action.add_argument("--tenant", required=True, metavar="NAME", help="whose batches")
    for action in (approve, discard):
        action.add_argument(
            "batch",
            nargs="?",
            metavar="BATCH",
            help="the batch id, or its start (default: the tenant's one held batch)",
        )
    listing.set_defaults(handler=holds.hold_list)
    approve.set_defaults(handler=holds.hold_decide)
    discard.set_defaults(handler=holds.hold_decide)


def _tenant_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tenant = commands.add_parser(
        "tenant", help="list, add or remove the tenants of this host (all but list: root)"
    )
    actions = tenant.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the configured tenants and their folders")
    _config_argument(listing)
    listing.set_defaults(handler=onboarding.tenant_list)
    add = actions.add_parser("add", help="create the account, folders, key and configuration")
    add.add_argument("name", metavar="NAME", help="the tenant and its account's name")
    add.add_argument(
        "--protocol",
        choices=("sftp", "ftps", "both"),
        default="sftp",
        help="how the customer uploads: SFTP (a key), FTPS (a password) or both (default: sftp)",
    )
    add.add_argument(
        "--key", type=Path, default=None, metavar="FILE", help="the customer's SSH public key"
    )
    add.add_argument(
        "--failed-import-email",
        required=True,
        metavar="ADDRESS",
        help="where failure reports go",
    )
    add.add_argument(
        "--reply-to",
        required=True,
        metavar="ADDRESS",
        help="the tenant's admin address: replies to reports go there",
    )
    add.add_argument(
        "--schema",
        type=Path,
        default=None,
        metavar="PATH",
        help="the header schema (default: schema/opscom-users.json beside the configuration)",
    )
    add.add_argument(
        "--api-url",
        default=None,
        metavar="URL",
        help="the Push API endpoint (default: none, users go to the embedded store)",
    )
    add.add_argument(
        "--token-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="the API token's file, put in place first (required with --api-url)",
    )
    ftps = actions.add_parser(
        "ftps", help="give an existing tenant FTPS, or its FTPS account a new password"
    )
    ftps.add_argument("name", metavar="NAME", help="the tenant")
    for action in (add, ftps):
        action.add_argument(
            "--password-file",
            type=Path,
            default=None,
            metavar="FILE",
            help="the FTPS password, on its first line (default: one is made and shown once)",
        )
    remove = actions.add_parser("remove", help="remove the configuration, key and account")
    remove.add_argument("name", metavar="NAME", help="the tenant to remove")
    remove.add_argument(
        "--purge",
        action="store_true",
        help="also delete the tenant's folders (default: keep them, owned by root)",
    )
    for action in (add, ftps, remove):
        _config_argument(action)
        action.add_argument(
            "--sftp-root",
            type=Path,
            default=Path("/srv/sftp"),
            metavar="DIR",
            help="where chroots are made (default: /srv/sftp)",
        )
        action.add_argument(
            "--keys-dir",
            type=Path,
            default=Path("/etc/ssh/authorized_keys"),
            metavar="DIR",
            help="sshd's AuthorizedKeysFile folder (default: /etc/ssh/authorized_keys)",
        )
        action.add_argument(
            "--group",
            default="sftp-import",
            metavar="GROUP",
            help="the group of SFTP tenant accounts (default: sftp-import)",
        )
        action.add_argument(
            "--service-user",
            default="user-import",
            metavar="USER",
            help="the account the service runs as (default: user-import)",
        )
    for action in (add, ftps, remove):
        action.set_defaults(handler=onboarding.tenant)


def _positive(text: str) -> int:
    """A whole number above zero, for an option."""
    try:
        number = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above zero, not {text!r}")
    return number


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=_DEFAULT_CONFIG,
        metavar="PATH",
        help=f"the service configuration (default: {_DEFAULT_CONFIG})",
    )
