"""The journal: every batch's, file's, row's and message's state, in SQLite or PostgreSQL.

Each step of a batch is recorded before the next begins, so after a crash the
batch resumes where the journal says it stopped (the states and their order
are in :mod:`watcher.core.states`). One :class:`Journal` per thread; its
tables are reached through its parts, each small and with one job::

    journal.batches    open, view (a batch with its files, counts and reasons
                       in one read), advance (the one way a batch changes state)
    journal.files      claimed or refused, named for .bak, archived
    journal.rows       pending, imported, unchanged or failed, with the reasons
    journal.users      each user's fingerprint last confirmed, per target
    journal.missing    users a full snapshot lacked: reported, or deactivated
    journal.messages   the outbox: queued, claimed, sent or rejected
    journal.history    past batches read for people: the page, status, metrics
    journal.checks     what the check lane answered, file by file
    journal.leases     which instance owns each tenant, when several share PostgreSQL

The parts write their statements once; the database underneath is SQLite (a
file in the state folder, the default) or PostgreSQL (shared by several
instances), chosen by what :class:`Journal` is given.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from watcher.shell.journal._database import Database, connect
from watcher.shell.journal._postgres import PostgresTarget, connect_postgres
from watcher.shell.journal.batches import Batches
from watcher.shell.journal.checks import Check, Checks
from watcher.shell.journal.files import Files
from watcher.shell.journal.history import History
from watcher.shell.journal.leases import Lease, Leases
from watcher.shell.journal.messages import Messages
from watcher.shell.journal.missing import Missing, MissingSet
from watcher.shell.journal.rows import Failure, Rows
from watcher.shell.journal.users import Confirmed, Users

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = [
    "Check",
    "Confirmed",
    "Failure",
    "Journal",
    "JournalAt",
    "Lease",
    "MissingSet",
    "PostgresTarget",
    "new_id",
]

# Where a journal lives: a SQLite file, or a PostgreSQL database.
JournalAt: TypeAlias = Path | PostgresTarget


def new_id() -> str:
    """A fresh identifier for a batch, file or message."""
    return uuid.uuid4().hex


class Journal:
    """The journal of one service: a state folder's SQLite file, or a shared database."""

    def __init__(
        self,
        where: JournalAt,
        *,
        read_only: bool = False,
        dedicated: bool = False,
        any_thread: bool = False,
    ) -> None:
        """Open (or create and upgrade) the journal; ``read_only`` changes nothing.

        On PostgreSQL, ``dedicated`` keeps a connection of its own rather than
        borrowing the process's pooled ones. ``any_thread``: used from one
        thread after another, never two at once (a run taken in turns).

        Raises:
            StateError: the folder or the database cannot be used (read-only,
                full, not a database, corrupted), with the path and the reason;
                DatabaseUnavailableError when PostgreSQL does not answer.
        """
        self.db: Database = (
            connect_postgres(where, read_only=read_only, dedicated=dedicated)
            if isinstance(where, PostgresTarget)
            else connect(where, read_only=read_only, any_thread=any_thread)
        )
        self.batches = Batches(self.db)
        self.files = Files(self.db)
        self.rows = Rows(self.db)
        self.users = Users(self.db)
        self.missing = Missing(self.db)
        self.messages = Messages(self.db)
        self.history = History(self.db)
        self.checks = Checks(self.db)
        self.leases = Leases(self.db)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def transaction(self) -> AbstractContextManager[None]:
        """``with journal.transaction():`` groups writes into one commit."""
        return self.db.transaction()
