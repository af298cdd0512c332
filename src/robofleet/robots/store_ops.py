"""Statements and shapes for robots and runs: the only SQL of the robots domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, func, not_, or_, select, update
from sqlalchemy.orm import Session

from robofleet.auth.permissions import RobotRef, robot_scope
from robofleet.auth.principal import SCHEDULE_ACTOR, Principal
from robofleet.errors import Conflict, NotFound
from robofleet.robots.masking import masked
from robofleet.robots.models import ACTIVE, ENDED, FAILED, LOST, PAUSED, RUNNING, STOPPING, Robot, Run
from robofleet.robots.reasons import (
    CLI_ACTOR,
    RESTART_ACTOR,
    SYSTEM_ACTORS,
    TOKEN_MARK,
    Origin,
    exit_meaning,
    origin_of,
)
from robofleet.robots.schemas import RestartPolicy, RobotOut, RunFilter, RunOut
from robofleet.robots.states import may_move
from robofleet.store.base import utcnow


def ref(robot: Robot) -> RobotRef:
    return RobotRef(robot.name, tuple(robot.tags))


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
        keep_leftovers=robot.keep_leftovers,
        log_format=robot.log_format or "auto",
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
        stop_deadline=run.stop_deadline,
        runtime_deadline=run.runtime_deadline,
        leftovers=run.leftovers,
        pending_action=run.pending_action,
        pause_asked_at=run.pause_asked_at,
        transitions=run.transitions,
        origin=origin_of(run.requested_by),
        duration_seconds=duration_of(run.started_at, run.ended_at),
        exit_meaning=exit_meaning(run.exit_code),
    )


def duration_of(started_at: datetime | None, ended_at: datetime | None) -> float | None:
    """Seconds from the start of a run's process to its end (or until now while it lasts); None before it
    started."""
    if started_at is None:
        return None
    return round(max(((ended_at or utcnow()) - started_at).total_seconds(), 0.0), 3)


def robot_query(name: str) -> Select[Any]:
    return select(Robot).where(Robot.name == name)


def find_robot(session: Session, name: str) -> Robot:
    robot: Robot | None = session.scalar(robot_query(name))
    if robot is None:
        raise NotFound(f"no robot named {name!r}", details={"robot": name})
    return robot


_ROBOTS: Table = Robot.__table__  # type: ignore[assignment]
# A write that changes nothing: on SQLite, as a transaction's first statement, it takes the database's write lock.
_TOUCH_ROBOT = update(_ROBOTS).where(_ROBOTS.c.name == bindparam("robot_name")).values(updated_at=_ROBOTS.c.updated_at)


def lock_robot(session: Session, name: str) -> Robot:
    """The robot, locked until the transaction ends so that a count of its runs and a run inserted after it are one
    step (two starts cannot both see room under max_concurrent). PostgreSQL locks its row (SELECT … FOR UPDATE).
    SQLite has no row locks: pysqlite begins a transaction at its first write, so a write to the row as the
    transaction's first statement takes the database's write lock at once (BEGIN IMMEDIATE's effect), and what is
    read after it is the latest commit, with no other writer until this transaction ends. Call it first."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(_TOUCH_ROBOT, {"robot_name": name})
    robot: Robot | None = session.scalar(robot_query(name).with_for_update())
    if robot is None:
        raise NotFound(f"no robot named {name!r}", details={"robot": name})
    return robot


def robot_exists(session: Session, name: str) -> bool:
    return session.scalar(select(Robot.id).where(Robot.name == name)) is not None


def find_run(session: Session, run_id: int, *, lock: bool = False) -> Run:
    """The run; with `lock`, its row stays locked until the transaction ends (PostgreSQL), so a check of its
    state and the change that depends on it are one step."""
    run = session.get(Run, run_id, with_for_update=lock)
    if run is None:
        raise NotFound(f"no run {run_id}", details={"run": run_id})
    return run


# Run ids are 64-bit integers on both stores.
MAX_RUN_ID = 2**63 - 1


def run_number(run_id: str) -> int | None:
    """`run_id` as a run's number, None when it cannot be one (not a positive 64-bit integer)."""
    if not run_id.isascii() or not run_id.isdigit():
        return None
    number = int(run_id)
    return number if 0 < number <= MAX_RUN_ID else None


def agent_of_run(session: Session, run_id: int) -> str | None:
    return session.scalar(select(Run.agent).where(Run.id == run_id))


def robot_of_run(session: Session, run: Run) -> RobotRef:
    """The robot a run belongs to, for permissions: by its name alone when the robot was deleted since."""
    robot = session.get(Robot, run.robot_id) if run.robot_id else None
    return ref(robot) if robot is not None else RobotRef(run.robot)


def active_runs(session: Session, robot: str) -> list[Run]:
    return list(session.scalars(select(Run).where(Run.robot == robot, Run.state.in_(ACTIVE)).order_by(Run.id)))


def active_run_ids(session: Session, *, agent: str | None = None, state: str | None = None) -> list[int]:
    stmt = select(Run.id).where(Run.state.in_(ACTIVE) if state is None else Run.state == state)
    if agent is not None:
        stmt = stmt.where(Run.agent == agent)
    return list(session.scalars(stmt.order_by(Run.id)))


def ended_with_token(session: Session) -> list[int]:
    """Ended runs whose own token was not revoked yet."""
    return list(session.scalars(select(Run.id).where(Run.state.in_(ENDED), Run.token_id.is_not(None))))


def agents_with_active_runs(session: Session) -> list[str]:
    return list(session.scalars(select(Run.agent).where(Run.state.in_(ACTIVE)).distinct()))


def count_active(session: Session, robot: str) -> int:
    return int(session.scalar(select(func.count(Run.id)).where(Run.robot == robot, Run.state.in_(ACTIVE))) or 0)


def robots_page_query() -> Select[Any]:
    return select(Robot)


def runs_query(
    robot: str | None, state: str | None, visible: frozenset[str] | None, where: RunFilter | None = None
) -> Select[Any]:
    """Runs of `robot` in `state` (either None: any), among the `visible` robots' (None: every robot's), that match
    `where` too."""
    stmt = select(Run)
    if robot:
        stmt = stmt.where(Run.robot == robot)
    if state:
        stmt = stmt.where(Run.state == state)
    if visible is not None:
        stmt = stmt.where(Run.robot.in_(sorted(visible)))
    if where is None:
        return stmt
    if where.robot:
        stmt = stmt.where(Run.robot == where.robot)
    if where.state:
        stmt = stmt.where(Run.state.in_([str(state) for state in where.state]))
    if where.agent:
        stmt = stmt.where(Run.agent == where.agent)
    if where.since is not None:
        stmt = stmt.where(Run.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(Run.created_at < where.until)
    if where.origin:
        stmt = stmt.where(or_(*(origin_condition(origin) for origin in where.origin)))
    if where.requested_by:
        # The user's own runs, through the panel or any of their tokens ("alice (token 3f2a…)").
        stmt = stmt.where(
            or_(
                Run.requested_by == where.requested_by,
                Run.requested_by.like(_escaped(where.requested_by) + TOKEN_MARK + "%", escape="\\"),
            )
        )
    return stmt


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def origin_condition(origin: Origin) -> ColumnElement[bool]:
    """SQL for "the run was started by a caller of kind `origin`", as reasons.origin_of decides it for one actor."""
    by = Run.requested_by
    schedule, restart = by.like(SCHEDULE_ACTOR + "%"), by == RESTART_ACTOR
    cli, system = by.like(CLI_ACTOR + "%"), by.in_(SYSTEM_ACTORS)
    token = by.like("%" + TOKEN_MARK + "%")
    if origin is Origin.SCHEDULE:
        return schedule
    if origin is Origin.RESTART:
        return restart
    if origin is Origin.CLI:
        return cli
    if origin is Origin.SYSTEM:
        return system
    earlier = or_(schedule, restart, cli, system)
    return and_(token, not_(earlier)) if origin is Origin.TOKEN else not_(or_(earlier, token))


class StopFacts(NamedTuple):
    stop_requested_by: str | None
    timeout: float  # the robot's safe_stop_timeout


def stop_facts(session: Session, run_id: int) -> StopFacts:
    """Who asked a run to stop, and how long it had to."""
    row = session.execute(
        select(Run.stop_requested_by, Robot.safe_stop_timeout)
        .outerjoin(Robot, Robot.id == Run.robot_id)
        .where(Run.id == run_id)
    ).first()
    return StopFacts(row[0], row[1] or 30.0) if row is not None else StopFacts(None, 30.0)


class RobotScope(NamedTuple):
    """The robots a caller may see or touch with one permission when its grants narrow it: the existing robots
    allowed (by name glob or tag), and the name globs themselves (they also cover robots since deleted)."""

    names: frozenset[str]
    globs: tuple[str, ...]


def robot_scope_of(session: Session, principal: Principal, permission: str) -> RobotScope | None:
    """None when `principal` holds `permission` for every robot."""
    scope = robot_scope(principal.grants, permission)
    if scope is None:
        return None
    globs, scope_tags = scope
    rows = session.execute(select(Robot.name, Robot.tags)).all()
    # The grants' own globs and tags, not principal.can: a grant narrows robots:* permissions only when asked about
    # one robot, while here any narrowed permission counts (logs:read of some robots reads their logs only).
    names = frozenset(
        name
        for name, tags in rows
        if any(fnmatchcase(name, glob) for glob in globs) or set(scope_tags) & set(tags or ())
    )
    return RobotScope(names, globs)


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


class DueDeadline(NamedTuple):
    run_id: int
    state: str
    stop_deadline: datetime | None
    runtime_deadline: datetime | None


def deadlines_due(session: Session, now: datetime) -> list[DueDeadline]:
    """Active runs with a stored deadline at or before `now`."""
    rows = session.execute(
        select(Run.id, Run.state, Run.stop_deadline, Run.runtime_deadline)
        .where(Run.state.in_(ACTIVE))
        .where(or_(Run.stop_deadline <= now, Run.runtime_deadline <= now))
        .order_by(Run.id)
    )
    return [DueDeadline(*row) for row in rows]


class PendingIntent(NamedTuple):
    """A stop or kill asked while the run's agent was away (`runs.pending_action`), sent once it is back."""

    run_id: int
    agent: str
    state: str
    action: str
    safe_stop_timeout: float


def pending_intents(session: Session) -> list[PendingIntent]:
    rows = session.execute(
        select(Run.id, Run.agent, Run.state, Run.pending_action, func.coalesce(Robot.safe_stop_timeout, 30.0))
        .outerjoin(Robot, Robot.id == Run.robot_id)
        .where(Run.pending_action.is_not(None))
        .order_by(Run.id)
    )
    return [
        PendingIntent(int(run_id), agent, state, str(action), float(timeout))
        for run_id, agent, state, action, timeout in rows
    ]


class LostRun(NamedTuple):
    run_id: int
    ending: bool  # a stop or kill was asked (and stands): alive again, it is stopping, not running
    safe_stop_timeout: float


def lost_runs(session: Session, agent: str) -> list[LostRun]:
    rows = session.execute(
        select(
            Run.id,
            or_(Run.stop_requested_by.is_not(None), Run.kill_requested_by.is_not(None)),
            func.coalesce(Robot.safe_stop_timeout, 30.0),
        )
        .outerjoin(Robot, Robot.id == Run.robot_id)
        .where(Run.agent == agent, Run.state == LOST)
        .order_by(Run.id)
    )
    return [LostRun(int(run_id), bool(ending), float(timeout)) for run_id, ending, timeout in rows]


def recent_failures(session: Session, robot: str, since: datetime) -> int:
    stmt = select(func.count(Run.id)).where(Run.robot == robot, Run.state == FAILED, Run.ended_at >= since)
    return int(session.scalar(stmt) or 0)


def restarts_due(session: Session, now: datetime) -> list[str]:
    """Robots whose planned restart is due, each taken (its plan cleared) in this transaction: started once."""
    robots = list(session.scalars(select(Robot).where(Robot.restart_at <= now).order_by(Robot.restart_at)))
    for robot in robots:
        robot.restart_at = None
    return [robot.name for robot in robots]


def next_deadline(session: Session) -> datetime | None:
    """The earliest stored deadline: stop deadlines of stopping runs, max runtimes of the others, planned restarts."""
    stop = session.scalar(select(func.min(Run.stop_deadline)).where(Run.state == STOPPING))
    runtime = session.scalar(select(func.min(Run.runtime_deadline)).where(Run.state.in_((RUNNING, PAUSED))))
    restart = session.scalar(select(func.min(Robot.restart_at)))
    found: Sequence[datetime] = [value for value in (stop, runtime, restart) if value is not None]
    return min(found) if found else None


def transition(
    run: Run, state: str, at: datetime, by: str, *, note: dict[str, Any] | None = None, **fields: Any
) -> None:
    """The one way a run's state changes: the state, its timestamp, who caused it and any `note` (how it was
    paused), appended to the history. A pause still waiting for a checkpoint ends with any change. Conflict when
    the transition table (robots/states.py) does not allow the move."""
    if not may_move(run.state, state):
        raise Conflict(
            f"run {run.id} is {run.state}: it cannot become {state}",
            details={"run": run.id, "state": run.state, "to": state},
            code="illegal_transition",
        )
    run.state = state
    run.pause_asked_at = None
    run.transitions = [*run.transitions, {"state": state, "at": at.isoformat(), "by": by, **(note or {})}]
    for key, value in fields.items():
        setattr(run, key, value)
