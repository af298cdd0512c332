"""Which lifecycle buttons of a robot fit the state of its runs: a pure function of the runs, so that the robot page
enables only what the service would accept (robots/service.py `act`, `start`, `restart`) and a test can read it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from robofleet.robots.schemas import RunOut
from robofleet.robots.states import ACTIVE, RunState

ACTIONS = ("start", "pause", "resume", "stop", "kill", "restart")


class Control(NamedTuple):
    action: str
    enabled: bool
    why: str  # what it does, or why it cannot now (the button's title)


def controls(runs: Sequence[RunOut], max_concurrent: int) -> list[Control]:
    """Each action on the robot as a button: enabled when at least one of its active runs (or, for start, the room
    under max_concurrent) allows it."""
    active = [run for run in runs if run.state in ACTIVE]
    running = [run for run in active if run.state == RunState.RUNNING]
    pausable = [run for run in running if run.pause_asked_at is None]
    paused = [run for run in active if run.state == RunState.PAUSED or run.pause_asked_at is not None]
    stoppable = [run for run in active if run.state in (RunState.RUNNING, RunState.PAUSED)]
    killable = [run for run in active if run.state != RunState.QUEUED]
    room = len(active) < max_concurrent
    return [
        Control(
            "start",
            room,
            "Start a new run"
            if room
            else f"{len(active)} run(s) going: at most {max_concurrent} at once (the robot's max concurrent runs)",
        ),
        Control("pause", bool(pausable), "Pause the running runs" if pausable else "No run is running unpaused"),
        Control(
            "resume", bool(paused), "Resume the paused runs" if paused else "No run is paused or on its way to a pause"
        ),
        Control(
            "stop", bool(stoppable), "Safe stop: ask the runs to end" if stoppable else "No run is running or paused"
        ),
        Control("kill", bool(killable), "Kill every process of the active runs" if killable else "No run is active"),
        Control(
            "restart",
            bool(stoppable),
            "Safe stop of the active runs, then a new start" if stoppable else "No run to restart: use Start",
        ),
    ]
