"""The ``watcher`` command line: parsing arguments and choosing the exit status.

Exit statuses follow one rule across commands: 0 when everything worked, 1 when
the command ran but found failures (rows that cannot be imported), 2 for a
usage mistake, an invalid schema or an invalid configuration, 3 when a batch
could not be completed (the API is unavailable or refused the token: its rows
stay pending and the next run resumes them).

:mod:`~watcher.cli.parser` declares the commands, :mod:`~watcher.cli.commands`
carries them out, :mod:`~watcher.cli.display` renders results for a terminal.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from watcher.cli.commands import EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from watcher.cli.parser import build_parser
from watcher.errors import WatcherError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
    except WatcherError as exc:
        print(f"watcher: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return status
