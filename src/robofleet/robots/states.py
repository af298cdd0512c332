"""A run's states and the transitions allowed between them (DESIGN.md), as data a test can read."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"
    KILLED = "killed"
    LOST = "lost"


ACTIVE: tuple[RunState, ...] = (
    RunState.QUEUED,
    RunState.STARTING,
    RunState.RUNNING,
    RunState.PAUSED,
    RunState.STOPPING,
)
ENDED: tuple[RunState, ...] = (
    RunState.SUCCEEDED,
    RunState.FAILED,
    RunState.STOPPED,
    RunState.KILLED,
    RunState.LOST,
)
_EXITS = (RunState.SUCCEEDED, RunState.FAILED, RunState.KILLED, RunState.LOST)

# From each state, the states a run may move to. An ended run moves no more, except a lost one: its agent came
# back and found it alive (running again, or stopping when a stop or kill was asked while it was away), or
# reported how it ended meanwhile.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.STARTING, RunState.FAILED, RunState.KILLED}),
    RunState.STARTING: frozenset({RunState.RUNNING, *_EXITS}),
    RunState.RUNNING: frozenset({RunState.PAUSED, RunState.STOPPING, *_EXITS}),
    RunState.PAUSED: frozenset({RunState.RUNNING, RunState.STOPPING, *_EXITS}),
    RunState.STOPPING: frozenset({RunState.STOPPED, *_EXITS}),
    RunState.SUCCEEDED: frozenset(),
    RunState.FAILED: frozenset(),
    RunState.STOPPED: frozenset(),
    RunState.KILLED: frozenset(),
    RunState.LOST: frozenset(
        {RunState.RUNNING, RunState.STOPPING, RunState.SUCCEEDED, RunState.FAILED, RunState.STOPPED, RunState.KILLED}
    ),
}


def may_move(source: str, target: str) -> bool:
    """Whether a run in state `source` may move to `target`."""
    return RunState(target) in TRANSITIONS[RunState(source)]
