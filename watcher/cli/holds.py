"""``watcher hold``: what an operator does with a batch the safeguard held.

``list`` shows the tenant's held batches, with the counts and columns that
made the safeguard hold them; ``approve`` lets one through (it is imported
as if it was never held) and ``discard`` drops it (its files are archived
unimported and the customer is told). Both only mark the batch in the
journal: the service acts on it at its next rescan, or ``watcher process
--tenant NAME`` does at once when the service is not running.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from watcher.cli.commands import EXIT_OK, EXIT_USAGE, refuse_root
from watcher.core.states import Safeguard

if TYPE_CHECKING:
    import argparse

    from watcher.config import Config, TenantConfig
    from watcher.core.records import BatchRecord
    from watcher.shell.journal import Journal

__all__ = ["hold_decide", "hold_list"]


def hold_list(args: argparse.Namespace) -> int:
    """``watcher hold list``: the tenant's held batches and why each is held."""
    from watcher.config import load_config  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.journal import Journal  # noqa: PLC0415
    from watcher.shell.statedir import StateDir  # noqa: PLC0415

    config = load_config(args.config)
    tenant = _tenant(config, args.tenant)
    if tenant is None:
        return EXIT_USAGE
    state = StateDir.of(config.service)
    if not state.has_journal():
        print(f"no held batches for {tenant.name}")
        return EXIT_OK
    journal = Journal(state.journal, read_only=True)
    try:
        held = _held(journal, tenant.name)
        if not held:
            print(f"no held batches for {tenant.name}")
        for batch in held:
            view = journal.batches.view(batch.id)
            since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(batch.created_at))
            changes = batch.changes
            print(f"{batch.id}  held since {since}")
            for file in view.files:
                print(f"  {file.record.name}: {file.counts.total:,} rows")
            if changes is not None:
                deactivate = f" and deactivate {changes.deactivate:,}" if changes.deactivate else ""
                print(
                    f"  would change {changes.changed:,}{deactivate} of {changes.known:,} known "
                    f"users ({changes.share:.0%}); {changes.new:,} new, "
                    f"{changes.unchanged:,} unchanged"
                )
                if changes.snapshot is not None:
                    print(
                        f"  full snapshot: names {changes.snapshot:,} users, "
                        f"{changes.missing:,} known users missing"
                        + (
                            " (held: under half the known users, or under safeguard_min_rows)"
                            if changes.hold == "small_snapshot"
                            else ""
                        )
                    )
                for name, count in changes.columns:
                    print(f"    {name}: {count:,} users")
    finally:
        journal.close()
    return EXIT_OK


def hold_decide(args: argparse.Namespace) -> int:
    """``watcher hold approve`` or ``discard``: mark a held batch; the service carries it out."""
    from watcher.config import load_config  # noqa: PLC0415 - keeps start-up lean
    from watcher.shell.journal import Journal  # noqa: PLC0415
    from watcher.shell.statedir import StateDir  # noqa: PLC0415

    config = load_config(args.config)
    tenant = _tenant(config, args.tenant)
    if tenant is None or refuse_root(config, f"hold {args.action}"):
        return EXIT_USAGE
    state = StateDir.of(config.service)
    if not state.has_journal():
        print(f"watcher: no held batch for {tenant.name}", file=sys.stderr)
        return EXIT_USAGE
    journal = Journal(state.journal)
    try:
        held = [b for b in _held(journal, tenant.name) if b.id.startswith(args.batch or "")]
        if len(held) != 1:
            found = ", ".join(b.id for b in held) or "none"
            print(f"watcher: name one held batch of {tenant.name} (held: {found})", file=sys.stderr)
            return EXIT_USAGE
        decision = Safeguard.APPROVED if args.action == "approve" else Safeguard.DISCARDED
        if not journal.batches.decide(held[0].id, decision):
            print(f"watcher: batch {held[0].id} is no longer held", file=sys.stderr)
            return EXIT_USAGE
    finally:
        journal.close()
    then = (
        "the service imports it at its next rescan"
        if decision is Safeguard.APPROVED
        else "the service archives its files unimported and tells the customer"
    )
    where = "" if state.locked() else f" (start it, or: watcher process --tenant {tenant.name})"
    print(f"{held[0].id} {decision}: {then}{where}")
    return EXIT_OK


def _tenant(config: Config, name: str) -> TenantConfig | None:
    try:
        return config.tenant(name)
    except KeyError as exc:
        print(f"watcher: {exc.args[0]}", file=sys.stderr)
        return None


def _held(journal: Journal, tenant: str) -> list[BatchRecord]:
    return [b for b in journal.batches.unfinished(tenant) if b.safeguard is Safeguard.HELD]
