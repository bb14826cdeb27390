"""The ``watcher`` command line: parsing arguments and choosing the exit status.

Exit statuses follow one rule across commands: 0 when everything worked, 1 when
the command ran but found failures (rows that cannot be imported), 2 for a
usage mistake, an invalid schema or an invalid configuration, 3 when a batch
could not be completed (the API is unavailable or refused the token: its rows
stay pending and the next run resumes them).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from watcher import __version__
from watcher.errors import WatcherError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watcher.config import Config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
DEFAULT_CONFIG = Path("/etc/user-import/watcher.toml")


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
    validate.set_defaults(handler=_validate)

    check_schema = commands.add_parser(
        "check-schema", help="check header schema files and list every problem"
    )
    check_schema.add_argument(
        "paths", type=Path, nargs="+", metavar="PATH", help="schema files to check"
    )
    check_schema.set_defaults(handler=_check_schema)

    check_config = commands.add_parser(
        "check-config", help="check the service configuration and what it refers to"
    )
    _config_argument(check_config)
    check_config.add_argument(
        "--offline",
        action="store_true",
        help="skip the SMTP and API probes (default: connect to each, sending nothing)",
    )
    check_config.set_defaults(handler=_check_config)

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
        "files",
        type=Path,
        nargs="*",
        metavar="FILE",
        help="files in the drop folder (none: only finish what an earlier run left)",
    )
    process.set_defaults(handler=_process)

    run = commands.add_parser("run", help="watch every tenant's drop folder and process uploads")
    _config_argument(run)
    run.add_argument("--once", action="store_true", help="process what is ready now, then exit")
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo", help="run the service on sample files in a local folder and show the results"
    )
    demo.add_argument(
        "--dir", type=Path, default=Path("demo"), metavar="DIR", help="where (default: ./demo)"
    )
    demo.set_defaults(handler=_demo)

    status = commands.add_parser("status", help="show what each tenant is waiting for")
    _config_argument(status)
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(handler=_status)

    _tenant_parser(commands)
    return parser


def _tenant_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tenant = commands.add_parser(
        "tenant", help="list, add or remove the tenants of this SFTP host (add and remove: root)"
    )
    actions = tenant.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the configured tenants and their folders")
    _config_argument(listing)
    listing.set_defaults(handler=_tenant_list)
    add = actions.add_parser("add", help="create the account, folders, key and configuration")
    add.add_argument("name", metavar="NAME", help="the tenant and SFTP account name")
    add.add_argument(
        "--key", type=Path, required=True, metavar="FILE", help="the customer's SSH public key"
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
    remove = actions.add_parser("remove", help="remove the configuration, key and account")
    remove.add_argument("name", metavar="NAME", help="the tenant to remove")
    remove.add_argument(
        "--purge",
        action="store_true",
        help="also delete the tenant's folders (default: keep them, owned by root)",
    )
    for action in (add, remove):
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
    add.set_defaults(handler=_tenant)
    remove.set_defaults(handler=_tenant)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="PATH",
        help=f"the service configuration (default: {DEFAULT_CONFIG})",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except WatcherError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return status


def _validate(args: argparse.Namespace) -> int:
    from watcher.cli.display import validation_summary  # noqa: PLC0415 - keeps start-up lean
    from watcher.core.reading import read_table  # noqa: PLC0415
    from watcher.core.schema_parser import load_schema, shipped_schema_path  # noqa: PLC0415
    from watcher.core.validation import validate  # noqa: PLC0415

    schema = load_schema(args.schema or shipped_schema_path())
    path: Path = args.file
    if not path.is_file():
        print(f"watcher: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        table = read_table(path)
    except OSError as exc:
        print(f"watcher: {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    report = validate(table, schema)
    if args.json:
        document = {
            "file": str(path),
            "schema": schema.label,
            "encoding": report.encoding,
            "rows_total": report.rows_total,
            "rows_valid": report.rows_valid,
            "rows_failed": report.rows_failed,
            "rows_blank": report.rows_blank,
            "file_errors": [
                {"code": p.code.value, "message": p.message, "field": p.field}
                for p in report.file_errors
            ],
            "columns": [
                {"column": c.letter, "header": c.header, "field": c.field} for c in report.columns
            ],
            "notes": list(report.notes),
        }
        # polars writes the (possibly very long) failure list seven times
        # faster than json.dumps over dicts; it goes in as the last member.
        head = json.dumps(document, ensure_ascii=False)
        sys.stdout.write(f'{head[:-1]}, "failures": {report.failures.write_json()}}}\n')
    else:
        print(validation_summary(path.name, report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _check_schema(args: argparse.Namespace) -> int:
    from watcher.core.schema_parser import load_schema  # noqa: PLC0415 - keeps start-up lean

    status = EXIT_OK
    for path in args.paths:
        try:
            schema = load_schema(path)
        except WatcherError as exc:
            print(f"watcher: {exc}", file=sys.stderr)
            status = EXIT_USAGE
        else:
            print(f"{path}: ok, {len(schema.fields)} fields, version {schema.label}")
    return status


def _check_config(args: argparse.Namespace) -> int:
    from watcher.config import (  # noqa: PLC0415 - keeps start-up lean
        exposed_secrets,
        folder_warnings,
        load_config,
        preflight,
    )

    config = load_config(args.config)
    for key, found in exposed_secrets(config):
        print(f"watcher: warning: {key}: {found}", file=sys.stderr)
    for warning in folder_warnings(config):
        print(f"watcher: warning: {warning}", file=sys.stderr)
    problems = preflight(config)
    if not args.offline:
        from watcher.shell.probes import probe  # noqa: PLC0415 - only when probing

        problems += probe(config)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        print(f"watcher: {args.config}:\n{listing}", file=sys.stderr)
        return EXIT_USAGE
    names = ", ".join(t.name for t in config.tenants) or "none"
    print(f"{args.config}: ok, {len(config.tenants)} tenants ({names})")
    return EXIT_OK


def _process(args: argparse.Namespace) -> int:
    from watcher.cli.display import process_summary  # noqa: PLC0415
    from watcher.config import load_config  # noqa: PLC0415
    from watcher.core.schema_parser import load_schema  # noqa: PLC0415
    from watcher.shell import logs  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.journal import Journal  # noqa: PLC0415
    from watcher.shell.pipeline import Pipeline  # noqa: PLC0415

    config = load_config(args.config)
    try:
        tenant = config.tenant(args.tenant)
    except KeyError as exc:
        print(f"watcher: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    load_schema(tenant.schema)
    names: list[str] = []
    for path in args.files:
        folder = (path.parent if path.parent != Path() else tenant.drop_dir).resolve()
        if folder != tenant.drop_dir.resolve():
            print(
                f"watcher: {path} is not in the drop folder of {tenant.name} ({tenant.drop_dir})",
                file=sys.stderr,
            )
            return EXIT_USAGE
        names.append(path.name)
    if _refuse_root(config, "process"):
        return EXIT_USAGE
    from watcher.errors import AlreadyRunningError  # noqa: PLC0415
    from watcher.shell.service import StateLock  # noqa: PLC0415

    try:
        lock = StateLock(config.service.state_dir)
    except AlreadyRunningError as exc:
        print(
            f"watcher: {exc}; drop the files into the folder instead, or stop the service",
            file=sys.stderr,
        )
        return EXIT_USAGE
    as_json = args.json or not sys.stdout.isatty()
    if as_json:
        logs.configure()
    else:  # a person at a terminal: a summary, and only what went wrong from the log
        logs.configure(stream=sys.stderr, json=False, level="warning")
    try:
        journal = Journal(config.service.state_dir / "journal.sqlite")
        try:
            pipeline = Pipeline(config, journal)
            pipeline.start_up()
            results = pipeline.resume(tenant.name)
            batch_id = pipeline.claim(tenant, names) if names else None
            if batch_id is not None:
                results.append(pipeline.run(batch_id))
            waiting = pipeline.deliver_mail()
        finally:
            journal.close()
    finally:
        lock.release()
    if not as_json:
        print(process_summary(results, waiting=waiting))
    return EXIT_OK if all(r.complete for r in results) else EXIT_INCOMPLETE


def _refuse_root(config: Config, command: str) -> bool:
    """Whether root must not run ``command`` on this state folder, said on stderr.

    Files root writes (the journal, the spool, reports in a customer's
    ``.bak/``) would be root's, and the service, running as the account that
    owns the state folder, could no longer write them.
    """
    state = config.service.state_dir
    try:
        owner = state.stat().st_uid
    except OSError:
        return False
    if os.geteuid() != 0 or owner == 0:
        return False
    try:
        user = pwd.getpwuid(owner).pw_name
    except KeyError:
        user = str(owner)
    print(
        f"watcher: {state} belongs to {user}, who runs the service: run this as that user "
        f"(sudo -u {user} watcher {command} ...), not as root",
        file=sys.stderr,
    )
    return True


def _run(args: argparse.Namespace) -> int:
    from watcher.config import load_config  # noqa: PLC0415
    from watcher.errors import AlreadyRunningError  # noqa: PLC0415
    from watcher.shell import logs  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.service import Service  # noqa: PLC0415

    config = load_config(args.config)
    if _refuse_root(config, "run"):
        return EXIT_USAGE
    logs.configure()
    service = Service(config)
    service.handle_signals()
    try:
        return service.run(once=args.once)
    except AlreadyRunningError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _demo(args: argparse.Namespace) -> int:
    from watcher.cli.demo import run_demo  # noqa: PLC0415 - keeps start-up lean

    return run_demo(args.dir)


def _tenant(args: argparse.Namespace) -> int:
    from watcher.shell.tenants import Layout, NewTenant, add, remove  # noqa: PLC0415

    layout = Layout(
        config=args.config.resolve(),
        sftp_root=args.sftp_root.resolve(),
        keys_dir=args.keys_dir.resolve(),
        group=args.group,
        service_user=args.service_user,
    )
    if args.action == "add":
        try:
            key = args.key.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"watcher: {args.key}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        steps = add(
            layout,
            NewTenant(
                name=args.name,
                public_key=key,
                failed_import_email=args.failed_import_email,
                reply_to=args.reply_to,
                schema=(
                    args.schema or layout.config.parent / "schema" / "opscom-users.json"
                ).resolve(),
                api_url=args.api_url,
                token_file=args.token_file.resolve() if args.token_file else None,
            ),
        )
    else:
        steps = remove(layout, args.name, purge=args.purge)
    for step in steps:
        print(f"  {step}")
    print("Restart the service to apply it: systemctl try-restart user-import-watcher")
    return EXIT_OK


def _tenant_list(args: argparse.Namespace) -> int:
    from watcher.config import load_config  # noqa: PLC0415 - keeps start-up lean

    config = load_config(args.config)
    if not config.tenants:
        print(f"no tenants in {args.config}")
    for tenant in config.tenants:
        try:
            pwd.getpwnam(tenant.name)
            account = "SFTP account"
        except KeyError:
            account = "no account on this host"
        where = tenant.api.url if tenant.api else "embedded store"
        folder = "" if tenant.drop_dir.is_dir() else " (MISSING)"
        print(f"{tenant.name:<20} {tenant.drop_dir}{folder}  {account}; users to {where}")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from watcher.cli.display import status_summary  # noqa: PLC0415
    from watcher.config import load_config  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.status import gather  # noqa: PLC0415

    status = gather(load_config(args.config))
    if args.json:
        print(json.dumps(status, indent=1))
    else:
        print(status_summary(status))
    return EXIT_OK
