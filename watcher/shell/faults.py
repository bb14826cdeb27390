"""Deterministic crash points, so tests can kill the service at every step.

When the environment variable ``WATCHER_KILL_AT`` names a step, the process
sends itself SIGKILL on reaching it: no cleanup, no flush, as a power cut or
the OOM killer would. The steps are the journal's checkpoints; the crash
tests run ``watcher process`` once per step and then again without the
variable, and check that nothing was lost or done twice.
"""

from __future__ import annotations

import os
import signal

__all__ = ["STEPS", "checkpoint"]

STEPS = (
    "claimed",
    "validating",
    "validated",
    "answered",
    "imported-some",
    "imported",
    "report-written",
    "reported",
    "archived-one",
    "archived",
    "mail-sent",
)


def checkpoint(step: str) -> None:
    """Die here, at once, if this run was asked to."""
    if os.environ.get("WATCHER_KILL_AT") == step:
        os.kill(os.getpid(), signal.SIGKILL)
