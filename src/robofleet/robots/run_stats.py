"""The runs' figures over time, for the dashboard and the metrics: runs by outcome today and per hour, each robot's
success rate over 24 hours and 7 days, recent failures with their reasons, the longest and the late runs, and the
duration histogram. Reads only; the windows are over when a run was created (the `ix_runs_created_at_robot_state`
index of migration 0017), so that a page or a scrape reads the window's runs, never every run.

Every function takes `visible`: the robots the reader may see (None: every robot), as the robots service's
`robot_scope` answers it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Integer, Select, and_, case, cast, extract, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from robofleet.robots.models import ACTIVE, FAILED, KILLED, LOST, SUCCEEDED, Run
from robofleet.robots.states import RunState

S = TypeVar("S", bound=Select[*tuple[Any, ...]])
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
HOURS = 24
FAILURES = (FAILED, KILLED, LOST)
RECENT_FAILURES = 10
LONGEST = 5
# A run is late once it has run LATE_FACTOR times its robot's mean successful run over 7 days (with at least
# LATE_SAMPLE such runs to go by), or past its own max run time.
LATE_FACTOR = 2.0
LATE_SAMPLE = 3
# Buckets of the duration histogram (seconds): a robot's run takes seconds to hours.
DURATION_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


def seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[Any]:
    """`end - start` in seconds (fractional), in the store's own SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def hour_of(session: Session, moment: Any, origin: datetime) -> ColumnElement[Any]:
    """Whole hours from `origin` to `moment`, in the store's own SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(extract("epoch", moment - literal(origin, Run.created_at.type)) / 3600)
    # Moments at or after `origin` only: a cast to INTEGER (toward zero) is the floor there.
    return cast((func.julianday(moment) - func.julianday(literal(origin, Run.created_at.type))) * 24, Integer)


def _seen(stmt: S, visible: frozenset[str] | None) -> S:
    return stmt if visible is None else stmt.where(Run.robot.in_(sorted(visible)))


@dataclass(frozen=True)
class RobotRate:
    """One robot's ended runs (created within the window) and how many succeeded; its mean successful run."""

    robot: str
    ended_day: int
    succeeded_day: int
    ended_week: int
    succeeded_week: int
    mean_seconds: float | None  # of its succeeded runs over 7 days
    sample: int  # how many succeeded runs that mean is of

    @property
    def rate_day(self) -> float | None:
        return self.succeeded_day / self.ended_day if self.ended_day else None

    @property
    def rate_week(self) -> float | None:
        return self.succeeded_week / self.ended_week if self.ended_week else None


class FailedRun(NamedTuple):
    id: int
    robot: str
    state: str
    exit_code: int | None
    error: str | None
    ended_at: datetime | None


class TimedRun(NamedTuple):
    """A run with how long it ran (or has run so far), and what is usual for its robot."""

    id: int
    robot: str
    state: str
    started_at: datetime
    seconds: float
    usual_seconds: float | None  # its robot's mean successful run over 7 days
    late: bool


@dataclass(frozen=True)
class HourCounts:
    start: datetime
    counts: dict[str, int]  # by state; an active state counts the runs still going

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    today: dict[str, int]  # runs created since midnight UTC, by state (every state, zeros too)
    rates: list[RobotRate]
    failures: list[FailedRun]
    running: list[TimedRun]  # active runs, the longest running first
    longest: list[TimedRun]  # ended within 24 hours, the longest first
    hours: list[HourCounts]  # the last 24 hours, oldest first
    late: list[TimedRun] = field(default_factory=list)  # the active runs that are late

    @property
    def today_total(self) -> int:
        return sum(self.today.values())


def dashboard(session: Session, now: datetime, visible: frozenset[str] | None) -> Dashboard:
    rates = robot_rates(session, now, visible)
    usual = {rate.robot: rate.mean_seconds for rate in rates if rate.sample >= LATE_SAMPLE}
    running = active_runs(session, now, visible, usual)
    return Dashboard(
        now=now,
        today=runs_by_state(session, now.replace(hour=0, minute=0, second=0, microsecond=0), visible),
        rates=rates,
        failures=recent_failures(session, now - WEEK, visible),
        running=running,
        longest=longest_runs(session, now - DAY, visible, usual),
        hours=hourly(session, now, visible),
        late=[run for run in running if run.late],
    )


def runs_by_state(session: Session, since: datetime, visible: frozenset[str] | None) -> dict[str, int]:
    counts = {state.value: 0 for state in RunState}
    stmt = _seen(select(Run.state, func.count()).where(Run.created_at >= since).group_by(Run.state), visible)
    for state, count in session.execute(stmt):
        counts[str(state)] = int(count)
    return counts


def robot_rates(session: Session, now: datetime, visible: frozenset[str] | None) -> list[RobotRate]:
    """Per robot with runs created within 7 days: ended and succeeded runs over 24 hours and 7 days, and its mean
    successful run; one pass over the week's runs."""
    day = Run.created_at >= now - DAY
    ended = Run.state.not_in(ACTIVE)
    ok = Run.state == SUCCEEDED
    duration = seconds_between(session, Run.started_at, Run.ended_at)
    stmt = _seen(
        select(
            Run.robot,
            func.sum(case((and_(ended, day), 1), else_=0)),
            func.sum(case((and_(ok, day), 1), else_=0)),
            func.sum(case((ended, 1), else_=0)),
            func.sum(case((ok, 1), else_=0)),
            func.avg(case((and_(ok, Run.started_at.is_not(None)), duration), else_=None)),
            func.count(case((and_(ok, Run.started_at.is_not(None)), 1), else_=None)),
        )
        .where(Run.created_at >= now - WEEK)
        .group_by(Run.robot)
        .order_by(Run.robot),
        visible,
    )
    return [
        RobotRate(
            str(robot),
            int(ended_day or 0),
            int(ok_day or 0),
            int(ended_week or 0),
            int(ok_week or 0),
            None if mean is None else float(mean),
            int(sample or 0),
        )
        for robot, ended_day, ok_day, ended_week, ok_week, mean, sample in session.execute(stmt)
    ]


def recent_failures(session: Session, since: datetime, visible: frozenset[str] | None) -> list[FailedRun]:
    """The newest failed, killed or lost runs created since `since`, each with its reason."""
    stmt = _seen(
        select(Run.id, Run.robot, Run.state, Run.exit_code, Run.error, Run.ended_at)
        .where(Run.created_at >= since, Run.state.in_(FAILURES))
        .order_by(Run.id.desc())
        .limit(RECENT_FAILURES),
        visible,
    )
    return [FailedRun(*row) for row in session.execute(stmt)]


def active_runs(
    session: Session, now: datetime, visible: frozenset[str] | None, usual: dict[str, float | None]
) -> list[TimedRun]:
    """Every active run that started, the longest running first; late when past its max run time or LATE_FACTOR
    times its robot's usual run."""
    stmt = _seen(
        select(Run.id, Run.robot, Run.state, Run.started_at, Run.runtime_deadline).where(
            Run.state.in_(ACTIVE), Run.started_at.is_not(None)
        ),
        visible,
    )
    runs = []
    for run_id, robot, state, started_at, deadline in session.execute(stmt):
        if started_at is None:  # not after the WHERE above; for the type checker
            continue
        seconds = (now - started_at).total_seconds()
        expected = usual.get(robot)
        late = (deadline is not None and deadline <= now) or (
            expected is not None and seconds > LATE_FACTOR * max(expected, 1.0)
        )
        runs.append(TimedRun(run_id, robot, str(state), started_at, seconds, expected, late))
    return sorted(runs, key=lambda run: -run.seconds)


def longest_runs(
    session: Session, since: datetime, visible: frozenset[str] | None, usual: dict[str, float | None]
) -> list[TimedRun]:
    """The ended runs created since `since` that ran longest."""
    duration = seconds_between(session, Run.started_at, Run.ended_at).label("seconds")
    stmt = _seen(
        select(Run.id, Run.robot, Run.state, Run.started_at, duration)
        .where(
            Run.created_at >= since, Run.state.not_in(ACTIVE), Run.started_at.is_not(None), Run.ended_at.is_not(None)
        )
        .order_by(duration.desc())
        .limit(LONGEST),
        visible,
    )
    runs = []
    for run_id, robot, state, started_at, seconds in session.execute(stmt):
        expected = usual.get(robot)
        late = expected is not None and float(seconds) > LATE_FACTOR * max(expected, 1.0)
        runs.append(TimedRun(run_id, robot, str(state), started_at, float(seconds), expected, late))
    return runs


def hourly(session: Session, now: datetime, visible: frozenset[str] | None, hours: int = HOURS) -> list[HourCounts]:
    """Runs created in each of the last `hours` whole hours (the current one last), by state."""
    origin = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    bucket = hour_of(session, Run.created_at, origin).label("bucket")
    stmt = _seen(
        select(bucket, Run.state, func.count()).where(Run.created_at >= origin).group_by(bucket, Run.state),
        visible,
    )
    counts: list[dict[str, int]] = [{} for _ in range(hours)]
    for index, state, count in session.execute(stmt):
        if 0 <= int(index) < hours:
            counts[int(index)][str(state)] = counts[int(index)].get(str(state), 0) + int(count)
    return [HourCounts(origin + timedelta(hours=index), counts[index]) for index in range(hours)]


# ---- metrics (every run, no reader's scope: /metrics checks its own permission) -----------------------------


class RobotDurations(NamedTuple):
    robot: str
    cumulative: list[int]  # runs at or under each bound of DURATION_BUCKETS
    runs: int
    total_seconds: float


def runs_by_robot_and_state(session: Session) -> list[tuple[str, str, int]]:
    stmt = select(Run.robot, Run.state, func.count()).group_by(Run.robot, Run.state).order_by(Run.robot, Run.state)
    return [(str(robot), str(state), int(count)) for robot, state, count in session.execute(stmt)]


def durations(session: Session, bounds: Sequence[float] = DURATION_BUCKETS) -> list[RobotDurations]:
    """How long each robot's ended runs ran, as a cumulative histogram: one aggregate per robot."""
    seconds = seconds_between(session, Run.started_at, Run.ended_at)
    stmt = (
        select(
            Run.robot,
            func.count(),
            func.coalesce(func.sum(seconds), 0.0),
            *(func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds),
        )
        .where(Run.state.not_in(ACTIVE), Run.started_at.is_not(None), Run.ended_at.is_not(None))
        .group_by(Run.robot)
        .order_by(Run.robot)
    )
    return [
        RobotDurations(str(row[0]), [int(value or 0) for value in row[3:]], int(row[1]), float(row[2]))
        for row in session.execute(stmt)
    ]
