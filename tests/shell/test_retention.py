"""Retention: old archives, messages and row detail go; what a held batch needs stays."""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING

import structlog

from tests.support import Site, users_csv
from watcher.cli import EXIT_INCOMPLETE, EXIT_OK, main
from watcher.config import load_config
from watcher.core.states import MessageState
from watcher.shell.context import BatchContext
from watcher.shell.journal import Journal
from watcher.shell.retention import Pruned, prune
from watcher.shell.statedir import StateDir

if TYPE_CHECKING:
    from pathlib import Path

DAY = 86400.0


def process(site: Site, *names: str) -> int:
    """Run ``watcher process`` in this process, as an operator would."""
    paths = [str(site.drop / name) for name in names]
    return main(["process", "--json", "--config", str(site.config), "--tenant", "jcu", *paths])


def test_a_pass_deletes_what_is_older_than_the_retention_and_nothing_else(
    tmp_path: Path,
) -> None:
    """An old batch's archives, sent message and rows go; a held batch and a link's target stay."""
    site = Site(tmp_path, tenant='retention = "30d"\nsafeguard_min_known = 10')
    site.drop_file("old.csv", users_csv(20, bad_every=7))
    assert process(site, "old.csv") == EXIT_OK
    site.drop_file("held.csv", users_csv(20).replace("@jcu.example", "@new.example"))
    assert process(site, "held.csv") == EXIT_INCOMPLETE  # the safeguard holds it
    state = StateDir(site.state)
    (report,) = [p for p in site.outbox() if not p.name.endswith(".held.eml")]
    journal = Journal(state.journal)
    try:
        (message,) = [
            m for m in journal.messages.in_state(MessageState.QUEUED) if m.path == str(report)
        ]
        journal.messages.claim(message.id)
        journal.messages.mark(message.id, MessageState.SENT, time.time())
        state.sent.mkdir()
        shutil.move(report, state.sent / report.name)
        ctx = BatchContext(
            config=load_config(site.config),
            journal=journal,
            state=state,
            log=structlog.get_logger(),
        )
        tenant = ctx.config.tenant("jcu")
        assert prune(ctx, tenant, now=time.time()) == Pruned()  # nothing is old yet
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("not the service's to delete")
        (site.bak / "evil.20200101T000000Z.deadbeef.csv").symlink_to(outside / "secret.txt")
        (site.bak / "notes.txt").write_text("no stamp: not an archive")
        pruned = prune(ctx, tenant, now=time.time() + 31 * DAY)
        (done,) = journal.batches.finished_before("jcu", time.time() + 1)
        kept = journal.batches.view(done).files[0].counts
        (held,) = journal.batches.unfinished("jcu")
        held_files = journal.batches.view(held.id).files
    finally:
        journal.close()
    assert pruned == Pruned(archives=4, messages=1, batches=1)  # old.csv's three, the link
    assert sorted(p.name for p in site.bak.iterdir()) == ["notes.txt"]
    assert (outside / "secret.txt").read_text() == "not the service's to delete"
    assert list(state.sent.iterdir()) == []
    assert (kept.total, kept.imported, kept.failed) == (20, 17, 3)
    assert [f.counts.pending for f in held_files] == [20]
    assert state.spool("jcu", held_files[0].record.id).exists()
    assert (site.drop / "held.csv").exists()


def test_without_a_retention_nothing_is_deleted(tmp_path: Path) -> None:
    """The default keeps everything, as before."""
    site = Site(tmp_path)
    site.drop_file("a.csv", users_csv(2))
    assert process(site, "a.csv") == EXIT_OK
    state = StateDir(site.state)
    journal = Journal(state.journal)
    try:
        ctx = BatchContext(
            config=load_config(site.config),
            journal=journal,
            state=state,
            log=structlog.get_logger(),
        )
        assert prune(ctx, ctx.config.tenant("jcu"), now=time.time() + 3650 * DAY) is None
    finally:
        journal.close()
    assert len(list(site.bak.iterdir())) == 2
    assert os.path.exists(site.state / "users.sqlite")  # noqa: PTH110 - as the README shows it
