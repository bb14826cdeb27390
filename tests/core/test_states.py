"""The one order of a batch's steps."""

from __future__ import annotations

import pytest

from watcher.core.states import BatchState, next_step


def test_a_batch_goes_through_every_step_in_order() -> None:
    """claiming, importing, reporting, archiving, done: nothing skipped."""
    states = [BatchState.CLAIMING]
    while states[-1] is not BatchState.DONE:
        states.append(next_step(states[-1]))
    assert states == list(BatchState)


def test_a_finished_batch_has_no_next_step() -> None:
    """Moving a done batch on is a mistake, said as one."""
    with pytest.raises(ValueError, match="no next step"):
        next_step(BatchState.DONE)
