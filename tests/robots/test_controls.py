"""Which lifecycle buttons fit a robot's runs (robots/controls.py): the robot page enables only what the service
would accept."""

from __future__ import annotations

from datetime import UTC, datetime

from robofleet.robots.controls import controls
from robofleet.robots.schemas import RunOut

AT = datetime(2026, 3, 10, tzinfo=UTC)


def run(state: str, *, pausing: bool = False) -> RunOut:
    return RunOut(
        id=1,
        robot="r",
        agent="local",
        state=state,
        pid=None,
        exit_code=None,
        manual=True,
        requested_by="admin",
        created_at=AT,
        started_at=AT,
        ended_at=None,
        pause_asked_at=AT if pausing else None,
        transitions=[],
    )


def enabled(runs: list[RunOut], max_concurrent: int = 1) -> set[str]:
    return {control.action for control in controls(runs, max_concurrent) if control.enabled}


def test_the_buttons_follow_the_runs_states() -> None:
    assert enabled([]) == {"start"}
    assert enabled([run("succeeded"), run("failed")]) == {"start"}
    assert enabled([run("running")]) == {"pause", "stop", "kill", "restart"}
    assert enabled([run("running", pausing=True)]) == {"resume", "stop", "kill", "restart"}  # call the pause off
    assert enabled([run("paused")]) == {"resume", "stop", "kill", "restart"}
    assert enabled([run("stopping")]) == {"kill"}
    assert enabled([run("starting")]) == {"kill"}
    assert enabled([run("running")], max_concurrent=2) == {"start", "pause", "stop", "kill", "restart"}


def test_a_disabled_button_says_why() -> None:
    start = next(control for control in controls([run("running")], 1) if control.action == "start")
    assert not start.enabled and "at most 1 at once" in start.why
