"""Retention: old archives, messages and row detail go; what a held batch needs stays."""

from __future__ import annotations

import os
import shutil
import time
from typing import TYPE_CHECKING

import structlog
from structlog.testing import capture_logs

from tests.support import Site, users_csv
from watcher.cli import EXIT_INCOMPLETE, EXIT_OK, main
from watcher.config import load_config
from watcher.core.states import MessageState
from watcher.shell.journal import Journal
from watcher.shell.pipeline.context import BatchContext
from watcher.shell.running.retention import Pruned, prune
from watcher.shell.statedir import StateDir

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

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


def _context(site: Site, journal: Journal) -> BatchContext:
    return BatchContext(
        config=load_config(site.config),
        journal=journal,
        state=StateDir(site.state),
        log=structlog.get_logger(),
    )


def test_dates_a_customer_wrote_in_a_name_neither_stop_nor_steer_retention(
    tmp_path: Path,
) -> None:
    """Impossible and future stamps in uploads' names: their archives go by the service's date."""
    site = Site(tmp_path, tenant='retention = "30d"')
    names = [
        "x.20260230T000000Z.deadbeef.csv",
        "y.20269999T999999Z.deadbeef.csv",
        "z.29991231T000000Z.deadbeef.csv",
    ]
    for name in names:
        site.drop_file(name, users_csv(2))
    assert process(site, *names) == EXIT_OK
    journal = Journal(StateDir(site.state).journal)
    try:
        ctx = _context(site, journal)
        tenant = ctx.config.tenant("jcu")
        kept = prune(ctx, tenant, now=time.time() + 29 * DAY)
        pruned = prune(ctx, tenant, now=time.time() + 31 * DAY)
    finally:
        journal.close()
    assert kept == Pruned()
    assert pruned == Pruned(archives=6, batches=1)  # each file and its .result.json
    assert list(site.bak.iterdir()) == []


def test_a_bak_the_customer_made_is_left_alone_with_one_warning(tmp_path: Path) -> None:
    """A .bak open to others' writing is the customer's: nothing in it is deleted, nothing raised."""
    site = Site(tmp_path, tenant='retention = "30d"')
    site.bak.mkdir()
    site.bak.chmod(0o2777)  # a customer's folder, as their umask and the group's setgid make it
    planted = site.bak / "a.20200101T000000Z.deadbeef.csv"
    planted.write_text("unique_id\n")
    journal = Journal(StateDir(site.state).journal)
    try:
        ctx = _context(site, journal)
        with capture_logs() as logged:
            pruned = prune(ctx, ctx.config.tenant("jcu"), now=time.time())
    finally:
        journal.close()
    assert pruned == Pruned()
    assert planted.exists()
    assert [e["event"] for e in logged if e["log_level"] == "warning"] == ["retention.bak_not_ours"]


def test_an_archive_that_cannot_be_deleted_stays_and_the_others_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One entry the file system will not delete is said once; the pass deletes the rest."""
    site = Site(tmp_path, tenant='retention = "30d"')
    site.drop_file("a.csv", users_csv(2))
    site.drop_file("b.csv", users_csv(2, start=10))
    assert process(site, "a.csv", "b.csv") == EXIT_OK
    stuck = next(
        p.name for p in site.bak.iterdir() if p.name.startswith("a.") and "json" not in p.name
    )
    unlink = os.unlink

    def refuse(name: str, *, dir_fd: int | None = None) -> None:
        if name == stuck:
            raise PermissionError(1, "Operation not permitted", name)
        unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", refuse)
    journal = Journal(StateDir(site.state).journal)
    try:
        ctx = _context(site, journal)
        with capture_logs() as logged:
            pruned = prune(ctx, ctx.config.tenant("jcu"), now=time.time() + 31 * DAY)
    finally:
        journal.close()
    assert pruned == Pruned(archives=3, batches=1)
    assert [p.name for p in site.bak.iterdir()] == [stuck]
    (kept,) = [e for e in logged if e["event"] == "retention.entry_kept"]
    assert kept["error"] == "Operation not permitted"
