"""Carrying out each ``watcher`` command: its work, its output and its exit status."""

from __future__ import annotations

import json
import os
import pwd
import queue
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from watcher.errors import WatcherError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

    import polars as pl

    from watcher.config import Config, TenantConfig

__all__ = [
    "EXIT_FAILED",
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_USAGE",
    "check_config",
    "check_schema",
    "demo",
    "process",
    "refuse_root",
    "run",
    "status",
    "validate",
    "write_json",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
_JSON_SLICE = 20_000  # failures written to standard output at a time


def validate(args: argparse.Namespace) -> int:
    """``watcher validate``: check a file against a schema and list its failures."""
    from watcher.core.reading import read_table  # noqa: PLC0415 - keeps start-up lean
    from watcher.core.schema_parser import load_schema, shipped_schema_path  # noqa: PLC0415
    from watcher.core.validation import validate  # noqa: PLC0415

    schema = load_schema(args.schema or shipped_schema_path())
    path: Path = args.file
    if not path.is_file():
        print(f"watcher: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    try:
        table = read_table(path, max_rows=args.max_rows, schema=schema)
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
        write_json(document, report.failures)
    else:
        from watcher.cli.display import validation_summary  # noqa: PLC0415 - text only

        print(validation_summary(path.name, report))
    return EXIT_OK if report.ok else EXIT_FAILED


def write_json(document: Mapping[str, object], failures: pl.DataFrame) -> None:
    """Write ``document`` to standard output with ``failures`` as its last member.

    polars writes the (possibly very long) failure list seven times faster
    than json.dumps over dicts; it goes in a slice at a time, so a million
    failures never sit in memory as text.
    """
    head = json.dumps(document, ensure_ascii=False)
    sys.stdout.write(f'{head[:-1]}, "failures": [')
    for start in range(0, failures.height, _JSON_SLICE):
        part = failures.slice(start, _JSON_SLICE).write_json()[1:-1]
        sys.stdout.write(("," if start else "") + part)
    sys.stdout.write("]}\n")


def check_schema(args: argparse.Namespace) -> int:
    """``watcher check-schema``: list every problem in each schema file."""
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


def check_config(args: argparse.Namespace) -> int:
    """``watcher check-config``: check the configuration and what it points at."""
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
        from watcher.shell.accounts.probes import probe  # noqa: PLC0415 - only when probing

        problems += probe(config)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        print(f"watcher: {args.config}:\n{listing}", file=sys.stderr)
        return EXIT_USAGE
    names = ", ".join(t.name for t in config.tenants) or "none"
    print(f"{args.config}: ok, {len(config.tenants)} tenants ({names})")
    return EXIT_OK


def process(args: argparse.Namespace) -> int:
    """``watcher process``: run one tenant's files as one batch, as the service would."""
    from watcher.cli.display import process_summary  # noqa: PLC0415
    from watcher.config import load_config  # noqa: PLC0415
    from watcher.errors import AlreadyRunningError  # noqa: PLC0415
    from watcher.shell import logs  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.mail import mailer  # noqa: PLC0415
    from watcher.shell.pipeline.batches import run_tenant  # noqa: PLC0415
    from watcher.shell.pipeline.turns import here  # noqa: PLC0415
    from watcher.shell.running.runtime import Runtime  # noqa: PLC0415
    from watcher.shell.running.schemas import InForce  # noqa: PLC0415

    config = load_config(args.config)
    try:
        tenant = config.tenant(args.tenant)
    except KeyError as exc:
        print(f"watcher: {exc.args[0]}", file=sys.stderr)
        return EXIT_USAGE
    schema = InForce.from_file(tenant.schema)
    names = _in_drop_folder(tenant, args.files)
    if names is None:
        return EXIT_USAGE
    if refuse_root(config, "process"):
        return EXIT_USAGE
    as_json = args.json or not sys.stdout.isatty()
    if as_json:
        logs.configure()
    else:  # a person at a terminal: a summary, and only what went wrong from the log
        logs.configure(stream=sys.stderr, json=False, level="warning")
    runtime = Runtime(config=config, log=logs.get_logger())
    ownership = runtime.ownership([tenant.name], queue.Queue())
    try:
        with runtime.hold(ownership, take_all=True) as held:
            if tenant.name not in held.owned:
                print(
                    f"watcher: another instance runs {tenant.name} now: drop the files into "
                    "its folder instead (watcher status says which)",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            ctx = runtime.context(held.journal, resend_all=args.resend_all)
            results = here(run_tenant(ctx, tenant, names, schema))
            mine = [tenant.name] if runtime.shared else None
            waiting = mailer.deliver(config, held.journal, runtime.state, ctx.log, mine)
    except AlreadyRunningError as exc:
        print(
            f"watcher: {exc}; drop the files into the folder instead, or stop the service",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not as_json:
        print(process_summary(results, waiting=waiting))
    return EXIT_OK if all(r.complete for r in results) else EXIT_INCOMPLETE


def _in_drop_folder(tenant: TenantConfig, files: list[Path]) -> list[str] | None:
    """The names of ``files``, all in the tenant's drop folder; None (said) when one is not."""
    names = []
    for path in files:
        folder = (path.parent if path.parent != Path() else tenant.drop_dir).resolve()
        if folder != tenant.drop_dir.resolve():
            print(
                f"watcher: {path} is not in the drop folder of {tenant.name} ({tenant.drop_dir})",
                file=sys.stderr,
            )
            return None
        names.append(path.name)
    return names


def refuse_root(config: Config, command: str) -> bool:
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


def run(args: argparse.Namespace) -> int:
    """``watcher run``: the service, until stopped (or, with ``--once``, what is ready now)."""
    from watcher.config import load_config  # noqa: PLC0415
    from watcher.errors import AlreadyRunningError  # noqa: PLC0415
    from watcher.shell import logs  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.running.service import Service  # noqa: PLC0415

    config = load_config(args.config)
    if refuse_root(config, "run"):
        return EXIT_USAGE
    logs.configure()
    service = Service(config)
    service.handle_signals()
    try:
        return service.run(once=args.once)
    except AlreadyRunningError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE


def demo(args: argparse.Namespace) -> int:
    """``watcher demo``: the service on sample files in a local folder."""
    from watcher.cli.demo import run_demo  # noqa: PLC0415 - keeps start-up lean

    return run_demo(args.dir)


def status(args: argparse.Namespace) -> int:
    """``watcher status``: what each tenant is waiting for."""
    from watcher.cli.display import recent_summary, status_summary  # noqa: PLC0415
    from watcher.config import load_config  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.statedir import StateDir  # noqa: PLC0415
    from watcher.shell.web.detail import tenant_detail  # noqa: PLC0415
    from watcher.shell.web.status import gather  # noqa: PLC0415

    config = load_config(args.config)
    state = StateDir.of(config.service)
    if args.tenant is not None:
        try:
            detail = tenant_detail(config, state, args.tenant)
        except KeyError as exc:
            print(f"watcher: {exc.args[0]}", file=sys.stderr)
            return EXIT_USAGE
        if args.json:
            print(json.dumps(detail, indent=1))
            return EXIT_OK
    status = gather(config, state, only=None if args.tenant is None else (args.tenant,))
    if args.json:
        print(json.dumps(status, indent=1))
        return EXIT_OK
    print(status_summary(status, config=args.config.resolve()))
    if args.tenant is not None:
        print(recent_summary(detail))
    return EXIT_OK
