"""A tenant's check answers by email: gathered, and sent as one message a while.

A customer who puts 500 files in ``check/`` gets 500 answers beside them,
not 500 emails. Each answer's part (:class:`watcher.core.notices.CheckAnswer`
and the failed rows it would attach) waits in ``STATE/check-mail/<tenant>/``;
:func:`flush` makes one message of every part waiting, at most once per
``check_mail_every`` (a minute): the first answer goes at once, those that
come within the minute are folded into the next message. The parts survive a
restart, and a message made again after a crash has the same id, so the
journal queues it once.

A message stays under the size ordinary mail servers take: at most
``_ATTACHED_FILES`` lists are attached, together within
:data:`watcher.core.reporting.ATTACHMENT_LIMIT`; the text says where the
others are (``check/<name>.check.csv``). No more than that waits in the
state folder for a tenant, however many files it checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from watcher.core.notices import CheckAnswer, check_message
from watcher.core.reporting import ATTACHMENT_LIMIT
from watcher.shell.files import replace_file
from watcher.shell.mail.mailer import queue_message

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from watcher.config import TenantConfig
    from watcher.shell.pipeline.context import BatchContext
    from watcher.shell.statedir import StateDir

__all__ = ["add", "due", "flush"]

_ATTACHED_FILES = 10
# Files one message tells of; more wait for the next (a body stays readable).
_FILES_PER_MESSAGE = 500
_LAST = "last-sent"


def add(
    ctx: BatchContext, tenant: TenantConfig, part_id: str, answer: CheckAnswer, rows: bytes | None
) -> None:
    """Keep one file's answer (and its failed rows) for the tenant's next check message."""
    folder = ctx.state.check_mail(tenant.name)
    folder.mkdir(parents=True, exist_ok=True)
    # Only what one message could attach waits in the state folder every tenant
    # shares; a list past that is named in the message where it lies, in check/.
    waiting = sum(p.stat().st_size for p in folder.glob("*.csv"))
    if rows is not None and waiting + len(rows) <= ATTACHMENT_LIMIT:
        replace_file(folder, f"{part_id}.csv", rows, mode=0o600)
    # ensure_ascii keeps a name's undecodable bytes (lone surrogates) as escapes.
    document = {**dataclasses.asdict(answer), "at": ctx.clock()}
    replace_file(folder, f"{part_id}.json", json.dumps(document).encode(), mode=0o600)


def due(
    state: StateDir, tenant: TenantConfig, every: float, clock: Callable[[], float] = time.time
) -> bool:
    """Whether answers wait and the tenant's last check message is ``every`` seconds old."""
    folder = state.check_mail(tenant.name)
    try:
        waiting = any(path.suffix == ".json" for path in folder.iterdir())
    except FileNotFoundError:
        return False
    return waiting and clock() >= _last_sent(folder) + every


def flush(ctx: BatchContext, tenant: TenantConfig) -> int:
    """Queue one message of the answers waiting, if the last went ``check_mail_every`` ago.

    Returns how many answers it told of.
    """
    folder = ctx.state.check_mail(tenant.name)
    if not due(ctx.state, tenant, ctx.config.service.check_mail_every, ctx.clock):
        return 0
    loaded = (_load(ctx, tenant.name, path) for path in folder.iterdir() if path.suffix == ".json")
    parts = sorted((p for p in loaded if p is not None), key=lambda p: (p[1].at, p[0]))
    parts = parts[:_FILES_PER_MESSAGE]
    if not parts:
        return 0
    answers: list[CheckAnswer] = []
    attachments: dict[str, bytes] = {}
    size = 0
    for part_id, part in parts:
        answer = part.answer
        rows = _rows(folder, part_id) if answer.attachment is not None else None
        fits = (
            rows is not None
            and len(attachments) < _ATTACHED_FILES
            and size + len(rows) <= ATTACHMENT_LIMIT
            and answer.attachment not in attachments
        )
        if fits and rows is not None and answer.attachment is not None:
            attachments[answer.attachment] = rows
            size += len(rows)
        answers.append(answer)
    # The same parts make the same message after a crash: the journal queues it once.
    message_id = "check-" + hashlib.sha256(" ".join(p for p, _ in parts).encode()).hexdigest()[:24]
    message = check_message(
        tenant=tenant.name,
        check_id=message_id,
        sender=tenant.reply_to,
        recipient=tenant.recipients,
        answers=answers,
        attachments=attachments,
        now=ctx.clock(),
        service_address=ctx.config.email.sender if ctx.config.email else None,
    )
    queue_message(
        ctx,
        message,
        message_id=message_id,
        batch_id=message_id,
        tenant=tenant.name,
        files=len(answers),
    )
    replace_file(folder, _LAST, f"{ctx.clock()}\n".encode(), mode=0o600)
    _forget(folder, [part_id for part_id, _ in parts])
    return len(answers)


@dataclasses.dataclass(frozen=True, slots=True)
class _Part:
    answer: CheckAnswer
    at: float


def _load(ctx: BatchContext, tenant: str, path: Path) -> tuple[str, _Part] | None:
    """A waiting answer; None (and it is removed) when it cannot be read back."""
    name = path.name
    try:
        document: dict[str, Any] = json.loads(path.read_bytes())
        at = float(document.pop("at"))
        reasons = tuple((int(n), str(r)) for n, r in document.pop("reasons"))
        notes = tuple(str(n) for n in document.pop("notes", ()))
        answer = CheckAnswer(**document, reasons=reasons, notes=notes)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError) as exc:
        ctx.log.warning(
            "check.mail_part_unreadable", tenant=tenant, file=name, error=type(exc).__name__
        )
        path.unlink(missing_ok=True)
        return None
    return name.removesuffix(".json"), _Part(answer, at)


def _forget(folder: Path, part_ids: list[str]) -> None:
    """Remove the parts a queued message told of."""
    for part_id in part_ids:
        for suffix in (".csv", ".json"):
            with contextlib.suppress(FileNotFoundError):
                (folder / f"{part_id}{suffix}").unlink()


def _rows(folder: Path, part_id: str) -> bytes | None:
    try:
        return (folder / f"{part_id}.csv").read_bytes()
    except FileNotFoundError:
        return None


def _last_sent(folder: Path) -> float:
    """When the tenant's last check message was queued (0 when never, or unreadable)."""
    try:
        return float((folder / _LAST).read_text())
    except (OSError, ValueError):
        return 0.0
