"""What another domain (alerts) may read of runs, as plain records: the runs that ended since a point, the runs
still active, the durations of a robot's recent successful runs, and whether a failure made the restart policy
give up. Reads only: the robots service stays the only writer of these tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from robofleet.robots.models import Robot, Run
from robofleet.robots.restarts import policy_of, restart_delay
from robofleet.robots.states import ACTIVE, RunState
from robofleet.store import Store

# Run ids are taken at insert and committed a little later: a window opens this many ids below the lowest it must
# cover, so a run inserted before a higher id but committed after it is still read.
ID_MARGIN = 1000


@dataclass(frozen=True)
class RunFact:
    id: int
    robot: str
    agent: str
    state: RunState
    exit_code: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class RunWindow:
    """Runs of ids from `low` on: those ended at or after a time, and those still active. `next_low` is where the
    next window must open so that no run active or committed late is skipped."""

    ended: list[RunFact]
    active: list[RunFact]
    next_low: int


def _fact(run: Run) -> RunFact:
    return RunFact(
        id=run.id,
        robot=run.robot,
        agent=run.agent,
        state=RunState(run.state),
        exit_code=run.exit_code,
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
    )


def run_window(store: Store, low: int, ended_since: datetime, limit: int = 20_000) -> RunWindow:
    """The runs of id ≥ `low` that ended at or after `ended_since` (oldest end first, at most `limit`) or are still
    active. Reads the id range only (the primary key), not the whole table."""
    with store.transaction() as session:
        top = session.scalar(select(func.max(Run.id))) or 0
        ended = list(
            session.scalars(
                select(Run)
                .where(Run.id >= low, Run.ended_at.is_not(None), Run.ended_at >= ended_since)
                .order_by(Run.ended_at, Run.id)
                .limit(limit)
            )
        )
        active = list(session.scalars(select(Run).where(Run.id >= low, Run.state.in_(ACTIVE)).order_by(Run.id)))
        lowest_active = active[0].id if active else top + 1
        return RunWindow(
            ended=[_fact(run) for run in ended],
            active=[_fact(run) for run in active],
            next_low=max(min(lowest_active, top + 1) - ID_MARGIN, 0),
        )


def success_durations(store: Store, robots: Sequence[str], sample: int) -> dict[str, list[float]]:
    """The durations in seconds of each robot's newest `sample` succeeded runs."""
    found: dict[str, list[float]] = {}
    with store.transaction() as session:
        for robot in robots:
            rows = session.execute(
                select(Run.started_at, Run.ended_at)
                .where(Run.robot == robot, Run.state == RunState.SUCCEEDED)
                .order_by(Run.id.desc())
                .limit(sample)
            ).all()
            found[robot] = [
                (ended - started).total_seconds()
                for started, ended in rows
                if started is not None and ended is not None
            ]
    return found


@dataclass(frozen=True)
class GaveUp:
    robot: str
    failures: int
    window_seconds: float


def restart_gave_up(store: Store, robot: str, failed_at: datetime) -> GaveUp | None:
    """Whether the failure of `robot` at `failed_at` was one its on-failure restart policy did not restart after
    (too many failures within its window, as `restarts.restart_delay` decides); None otherwise, also for a robot
    without that policy, one stopped by hand, or one deleted since."""
    with store.transaction() as session:
        row = session.scalar(select(Robot).where(Robot.name == robot))
        if row is None:
            return None
        policy = policy_of(row.restart)
        if policy.policy != "on-failure" or row.manual_stop:
            return None
        since = failed_at - timedelta(seconds=policy.window_seconds)
        failures = int(
            session.scalar(
                select(func.count(Run.id)).where(
                    Run.robot == robot, Run.state == RunState.FAILED, Run.ended_at >= since, Run.ended_at <= failed_at
                )
            )
            or 0
        )
    if restart_delay(policy, manual_stop=False, failures=failures) is not None:
        return None
    return GaveUp(robot=robot, failures=failures, window_seconds=policy.window_seconds)
