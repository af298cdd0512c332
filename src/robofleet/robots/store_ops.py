"""Statements and shapes for robots and runs."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robofleet.errors import NotFound
from robofleet.robots.models import ACTIVE, Robot, Run
from robofleet.robots.schemas import RestartPolicy, RobotOut, RunOut

SECRET_KEY = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
MASK = "********"


def robot_out(robot: Robot) -> RobotOut:
    env = {key: MASK if SECRET_KEY.search(key) else value for key, value in robot.env.items()}
    return RobotOut(
        name=robot.name,
        agent=robot.agent,
        argv=robot.argv,
        cwd=robot.cwd,
        env=env,
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
        transitions=run.transitions,
    )


def find_robot(session: Session, name: str) -> Robot:
    robot = session.scalar(select(Robot).where(Robot.name == name))
    if robot is None:
        raise NotFound(f"no robot named {name!r}", details={"robot": name})
    return robot


def find_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id}", details={"run": run_id})
    return run


def active_runs(session: Session, robot: str) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.robot == robot, Run.state.in_(ACTIVE)).order_by(Run.id)))


def count_active(session: Session, robot: str) -> int:
    return int(session.scalar(select(func.count(Run.id)).where(Run.robot == robot, Run.state.in_(ACTIVE))) or 0)


def transition(run: Run, state: str, at: datetime, by: str, **fields: Any) -> None:
    """The one way a run's state changes: the state, its timestamp and who caused it, appended to the history."""
    run.state = state
    run.transitions = [*run.transitions, {"state": state, "at": at.isoformat(), "by": by}]
    for key, value in fields.items():
        setattr(run, key, value)
