"""Statements and shapes for robots and runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robofleet.errors import NotFound
from robofleet.robots.masking import masked
from robofleet.robots.models import ACTIVE, PAUSED, RUNNING, Robot, Run
from robofleet.robots.schemas import RestartPolicy, RobotOut, RunOut


def robot_out(robot: Robot) -> RobotOut:
    return RobotOut(
        name=robot.name,
        agent=robot.agent,
        argv=robot.argv,
        cwd=robot.cwd,
        env=masked(robot.env),
        session=robot.session,
        safe_stop_timeout=robot.safe_stop_timeout,
        max_runtime=robot.max_runtime,
        restart=RestartPolicy(**(robot.restart or {})),
        max_concurrent=robot.max_concurrent,
        tags=robot.tags,
        description=robot.description,
        from_config=robot.from_config,
        manual_stop=robot.manual_stop,
        created_at=robot.created_at,
    )


def run_out(run: Run) -> RunOut:
    return RunOut(
        id=run.id,
        robot=run.robot,
        agent=run.agent,
        state=run.state,
        pid=run.pid,
        exit_code=run.exit_code,
        error=run.error,
        manual=run.manual,
        requested_by=run.requested_by,
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        pause_asked_at=run.pause_asked_at,
        transitions=run.transitions,
    )


def find_robot(session: Session, name: str) -> Robot:
    robot = session.scalar(select(Robot).where(Robot.name == name))
    if robot is None:
        raise NotFound(f"no robot named {name!r}", details={"robot": name})
    return robot


def find_run(session: Session, run_id: int, *, lock: bool = False) -> Run:
    """The run; with `lock`, its row stays locked until the transaction ends (PostgreSQL), so a check of its
    state and the change that depends on it are one step."""
    run = session.get(Run, run_id, with_for_update=lock)
    if run is None:
        raise NotFound(f"no run {run_id}", details={"run": run_id})
    return run


def active_runs(session: Session, robot: str) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.robot == robot, Run.state.in_(ACTIVE)).order_by(Run.id)))


class PauseRecord(NamedTuple):
    state: str
    pause_asked_at: datetime | None
    safe_stop_timeout: float


def pause_records(session: Session, agent: str) -> dict[str, PauseRecord]:
    """Running and paused runs of `agent` by run id, with what their pause depends on."""
    rows = session.execute(
        select(Run.id, Run.state, Run.pause_asked_at, Robot.safe_stop_timeout)
        .outerjoin(Robot, Robot.id == Run.robot_id)
        .where(Run.agent == agent, Run.state.in_((RUNNING, PAUSED)))
    )
    return {str(row[0]): PauseRecord(row[1], row[2], row[3] or 30.0) for row in rows}


def count_active(session: Session, robot: str) -> int:
    return int(session.scalar(select(func.count(Run.id)).where(Run.robot == robot, Run.state.in_(ACTIVE))) or 0)


def transition(
    run: Run, state: str, at: datetime, by: str, *, note: dict[str, Any] | None = None, **fields: Any
) -> None:
    """The one way a run's state changes: the state, its timestamp, who caused it and any `note` (how it was
    paused), appended to the history. A pause still waiting for a checkpoint ends with any change."""
    run.state = state
    run.pause_asked_at = None
    run.transitions = [*run.transitions, {"state": state, "at": at.isoformat(), "by": by, **(note or {})}]
    for key, value in fields.items():
        setattr(run, key, value)
