"""``watcher demo``: the whole service on sample files, in a local folder.

It writes a configuration for one tenant on the embedded defaults (users go
to a SQLite store, the failure report to an outbox folder), starts the real
service, drops the shipped sample files into the drop folder as an upload
would, waits for the batch, stops the service, and shows where everything
went. Nothing leaves the machine.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from watcher.config import load_config
from watcher.core.schema_parser import shipped_schema_path
from watcher.core.states import FileState
from watcher.errors import StateError
from watcher.shell import logs
from watcher.shell.journal import Journal
from watcher.shell.running.service import Service
from watcher.shell.statedir import StateDir

__all__ = ["run_demo"]

_SAMPLES = Path(__file__).resolve().parent / "samples"
_TIMEOUT = 120.0
_SHOWN = 8


def _config(folder: Path, schema: Path) -> str:
    return f"""{_MARK} Run the service on it yourself with:
#   uv run watcher run --config {folder / "watcher.toml"}
[service]
state_dir = "state"
batch_window = "3s"
settle_time = "1s"
rescan_interval = "10s"

[[tenant]]
name = "demo"
drop_dir = "drop"
schema = "{schema}"
failed_import_email = "registrar@demo.example.edu"
reply_to = "User Import Admin <admin@demo.example.edu>"
"""


_MARK = "# Written by `watcher demo`."


def _fresh(folder: Path) -> bool:
    """Start from an empty folder: clear an earlier demo's, refuse anything else."""
    if folder.exists() and not folder.is_dir():
        print(f"{folder} is not a folder: choose another with --dir.")
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"{folder} cannot be made ({exc.strerror}): choose another with --dir.")
        return False
    if not any(folder.iterdir()):
        return True
    config = folder / "watcher.toml"
    if not (config.is_file() and config.read_text(errors="replace").startswith(_MARK)):
        print(f"{folder} is not empty and holds no earlier demo: choose another with --dir.")
        return False
    for name in ("drop", "state"):
        shutil.rmtree(folder / name, ignore_errors=True)
    (folder / "watcher.log").unlink(missing_ok=True)
    print(f"Cleared the earlier demo in {folder}.")
    return True


def run_demo(folder: Path) -> int:
    """Run the demo in ``folder``; the exit status."""
    folder = folder.resolve()
    if not _fresh(folder):
        return 2
    drop = folder / "drop"
    drop.mkdir(parents=True, exist_ok=True)
    (folder / "watcher.toml").write_text(_config(folder, shipped_schema_path()))
    config = load_config(folder / "watcher.toml")
    log_path = folder / "watcher.log"
    with log_path.open("a", encoding="utf-8") as log_file:
        logs.configure(stream=log_file, json=True)
        service = Service(config)
        runner = threading.Thread(target=service.run, name="service")
        started = time.monotonic()
        runner.start()
        samples = sorted(_SAMPLES.glob("*.csv"))
        state = StateDir.of(config.service)
        before = _archived(state)
        print(f"Service started in {folder} (batch window 3 s); dropping {len(samples)} files:")
        for sample in samples:
            shutil.copyfile(sample, drop / sample.name)
            print(f"  {drop / sample.name}")
        while _archived(state) < before + len(samples) and runner.is_alive():
            if time.monotonic() - started > _TIMEOUT:
                print("The batch did not finish in time; see the log.")
                break
            time.sleep(0.25)
        service.request_stop()
        runner.join()
    elapsed = time.monotonic() - started
    print(f"\nBatch done in {elapsed:.1f} s. Where everything went:\n")
    state = StateDir.of(config.service)
    _show_users(state.users)
    _show_report(state.outbox, state.sent)
    _show_bak(drop / ".bak")
    print(f"\nLogs (JSON lines): {log_path}")
    print(f"Run the service yourself: uv run watcher run --config {folder / 'watcher.toml'}")
    return 0


def _archived(state: StateDir) -> int:
    """How many files the service archived so far."""
    if not state.has_journal():
        return 0
    try:
        journal = Journal(state.journal, read_only=True)
    except StateError:  # the service is creating it
        return 0
    try:
        return journal.files.count(FileState.ARCHIVED)
    finally:
        journal.close()


def _show_users(store: Path) -> None:
    rows: list[tuple[str, str]] = []
    if store.exists():
        with sqlite3.connect(store) as db:
            rows = db.execute("SELECT key, attributes FROM users ORDER BY key").fetchall()
    print(f"Imported users: {len(rows)} in the embedded store {store}")
    for key, attributes in rows[:_SHOWN]:
        a = json.loads(attributes)
        name = " ".join(filter(None, (a.get("first_name"), a.get("last_name"))))
        print(f"  {key:<10} {name:<22} {a.get('email', '')}")
    if len(rows) > _SHOWN:
        print(f"  ... and {len(rows) - _SHOWN} more")


def _show_report(outbox: Path, sent: Path) -> None:
    reports = sorted([*outbox.glob("*.eml"), *sent.glob("*.eml")], key=lambda p: p.stat().st_mtime)
    if not reports:
        print("\nFailure report: none (every user was imported)")
        return
    path = reports[-1]
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    attachments = [a.get_filename() for a in message.iter_attachments()]
    print(f"\nFailure report (the email the customer gets): {path}")
    print(f"  To: {message['To']}   From: {message['From']}")
    print(f"  Subject: {message['Subject']}")
    print(f"  Attached: {', '.join(str(a) for a in attachments) or 'nothing'}")


def _show_bak(bak: Path) -> None:
    names = sorted(p.name for p in bak.iterdir()) if bak.exists() else []
    print(f"\nProcessed files, as the customer sees them in {bak}/:")
    for name in names:
        print(f"  {name}")
