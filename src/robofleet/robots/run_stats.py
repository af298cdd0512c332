"""The runs' figures over time, for the dashboard and the metrics: runs by outcome today and per hour, each robot's
success rate over 24 hours and 7 days, recent failures with their reasons, the longest and the late runs, and every
robot's runs by state. Reads only; the windows are over when a run was created (the `ix_runs_created_at_robot_state`
index of migration 0017), so that a page or a scrape reads the window's runs, never every run.

Every function takes `visible`: the robots the reader may see (None: every robot), as the robots service's
`robot_scope` answers it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Integer, Select, and_, case, cast, extract, func, literal, literal_column, select
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
# A run is late once it has run LATE_FACTOR times its robot's usual run (the median of its last USUAL_SAMPLE
# successful runs, when there are LATE_SAMPLE of them at least), or past its own max run time.
LATE_FACTOR = 2.0
LATE_SAMPLE = 3
USUAL_SAMPLE = 20


def seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[Any]:
    """`end - start` in seconds (fractional), in the store's own SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return extract("epoch", end - start)
    # Julian days are floats: 5 s may come out as 5.0000001 s, past a bucket's bound. To the millisecond, exact.
    return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)


def hour_of(session: Session, moment: Any, origin: datetime) -> ColumnElement[Any]:
    """Whole hours from `origin` to `moment`, in the store's own SQL."""
    since = seconds_between(session, literal(origin, Run.created_at.type), moment)
    if session.get_bind().dialect.name == "postgresql":
        return func.floor(since / 3600)
    # Moments at or after `origin` only: a cast to INTEGER (toward zero) is the floor there.
    return cast(since / 3600, Integer)


def grouped(session: Session, column: Any) -> ColumnElement[Any]:
    """A column of `runs` as a window's figures group by it. On SQLite, `GROUP BY robot` (or state) walks every run
    in that column's index order, to spare a sort, instead of searching the window's index; a unary + keeps an
    index out of a term there (SQLite's documented way), so it searches the window and sorts what it found."""
    if session.get_bind().dialect.name == "sqlite":
        return literal_column(f"+runs.{column.key}")
    return column  # type: ignore[no-any-return]


def _seen(stmt: S, visible: frozenset[str] | None) -> S:
    return stmt if visible is None else stmt.where(Run.robot.in_(sorted(visible)))


@dataclass(frozen=True)
class RobotRate:
    """One robot's ended runs (created within the window) and how many succeeded; its usual run."""

    robot: str
    ended_day: int
    succeeded_day: int
    ended_week: int
    succeeded_week: int
    usual_seconds: float | None  # the median of its last successful runs
    sample: int  # how many successful runs that is of

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
    usual_seconds: float | None  # its robot's usual run (RobotRate.usual_seconds)
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
    usual = {rate.robot: rate.usual_seconds for rate in rates if rate.sample >= LATE_SAMPLE}
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
    grouping = grouped(session, Run.state)
    stmt = _seen(select(Run.state, func.count()).where(Run.created_at >= since).group_by(grouping), visible)
    for state, count in session.execute(stmt):
        counts[str(state)] = int(count)
    return counts


def robot_rates(session: Session, now: datetime, visible: frozenset[str] | None) -> list[RobotRate]:
    """Per robot with runs created within 7 days: ended and succeeded runs over 24 hours and 7 days (one pass over
    the week's index entries, which hold all it reads), and its usual run (`usual_runs`)."""
    day = Run.created_at >= now - DAY
    ended = Run.state.not_in(ACTIVE)
    ok = Run.state == SUCCEEDED
    stmt = _seen(
        select(
            Run.robot,
            func.sum(case((and_(ended, day), 1), else_=0)),
            func.sum(case((and_(ok, day), 1), else_=0)),
            func.sum(case((ended, 1), else_=0)),
            func.sum(case((ok, 1), else_=0)),
        )
        .where(Run.created_at >= now - WEEK)
        .group_by(grouped(session, Run.robot))
        .order_by(Run.robot),
        visible,
    )
    counted = [
        (str(robot), int(ended_day or 0), int(ok_day or 0), int(ended_week or 0), int(ok_week or 0))
        for robot, ended_day, ok_day, ended_week, ok_week in session.execute(stmt)
    ]
    usual = usual_runs(session, [robot for robot, *_ in counted])
    return [
        RobotRate(robot, ended_day, ok_day, ended_week, ok_week, *usual.get(robot, (None, 0)))
        for robot, ended_day, ok_day, ended_week, ok_week in counted
    ]


def usual_runs(session: Session, robots: Sequence[str]) -> dict[str, tuple[float | None, int]]:
    """Each robot's usual run: the median duration of its last USUAL_SAMPLE successful runs, and how many that is
    of. A few index steps back from its newest run per robot, whatever the number of runs."""
    found: dict[str, tuple[float | None, int]] = {}
    for robot in robots:
        stmt = (
            select(Run.started_at, Run.ended_at)
            .where(Run.robot == robot, Run.state == SUCCEEDED)
            .order_by(Run.id.desc())
            .limit(USUAL_SAMPLE)
        )
        seconds = sorted(
            (ended - started).total_seconds()
            for started, ended in session.execute(stmt)
            if started is not None and ended is not None
        )
        found[robot] = (median(seconds) if seconds else None, len(seconds))
    return found


def recent_failures(session: Session, since: datetime, visible: frozenset[str] | None) -> list[FailedRun]:
    """The newest failed, killed or lost runs created since `since`, each with its reason: read back from the newest
    run (ids follow creation) until enough are found, never past the window's first run."""
    first = session.scalar(select(Run.id).where(Run.created_at >= since).order_by(Run.created_at).limit(1))
    if first is None:
        return []
    stmt = _seen(
        select(Run.id, Run.robot, Run.state, Run.exit_code, Run.error, Run.ended_at)
        .where(Run.id >= first, Run.state.in_(FAILURES))
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
        select(bucket, Run.state, func.count())
        .where(Run.created_at >= origin)
        .group_by(bucket, grouped(session, Run.state)),
        visible,
    )
    counts: list[dict[str, int]] = [{} for _ in range(hours)]
    for index, state, count in session.execute(stmt):
        if 0 <= int(index) < hours:
            counts[int(index)][str(state)] = counts[int(index)].get(str(state), 0) + int(count)
    return [HourCounts(origin + timedelta(hours=index), counts[index]) for index in range(hours)]


# ---- metrics (every run, no reader's scope: /metrics checks its own permission) -------------------------------


def runs_by_robot_and_state(session: Session) -> list[tuple[str, str, int]]:
    """Every run counted by robot and state: one pass over the creation-time index, which holds both."""
    by = (grouped(session, Run.robot), grouped(session, Run.state))
    stmt = select(Run.robot, Run.state, func.count()).group_by(*by).order_by(Run.robot, Run.state)
    return [(str(robot), str(state), int(count)) for robot, state, count in session.execute(stmt)]
