"""After a restart, a run's record follows how its processes really are: the pure decision, state by state."""

from __future__ import annotations

import pytest

from robofleet.robots.pausing import settling


@pytest.mark.parametrize(
    ("state", "pause_asked", "reported", "needed"),
    [
        ("running", False, None, None),
        ("running", True, "asked", "wait"),  # serve restarted while the robot was on its way to a checkpoint
        ("running", False, "asked", "wait"),  # ... and before it recorded that the pause was asked
        ("running", True, "cooperative", "paused"),  # it got there meanwhile
        ("running", False, "frozen", "paused"),  # frozen, and serve died before recording it
        ("running", True, None, "forget"),  # the request was withdrawn before serve could record it
        ("paused", False, "cooperative", None),
        ("paused", False, "frozen", None),
        ("paused", False, None, "running"),  # resumed, and serve died before recording it
    ],
)
def test_the_processes_are_the_truth(state: str, pause_asked: bool, reported: str | None, needed: str | None) -> None:
    assert settling(state, pause_asked, reported) == needed
