"""Statements and shapes of schedules, fires and calendars: the only SQL of the schedules domain."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, load_only

from robofleet.errors import NotFound
from robofleet.schedules.calendars import Calendar as DayCalendar
from robofleet.schedules.models import Calendar, Outcome, Schedule, ScheduleFire
from robofleet.schedules.schemas import CalendarOut, FireOut, Holidays, LastFire, Misfire, ScheduleOut, Target
from robofleet.store.base import UTCDateTime

_SCHEDULES: Table = Schedule.__table__  # type: ignore[assignment]
_FIRES: Table = ScheduleFire.__table__  # type: ignore[assignment]
# The fence of a fire: the next fire moves only from the value the engine read. A second engine that read the
# same value updates no row and fires nothing.
_MOVE_NEXT = (
    update(_SCHEDULES)
    .where(_SCHEDULES.c.id == bindparam("schedule_id"), _SCHEDULES.c.next_fire_at == bindparam("read_fire_at"))
    .values(
        next_fire_at=bindparam("new_fire_at"),
        next_planned_at=bindparam("new_planned_at"),
        window_end=bindparam("new_window_end"),
        queued_since=bindparam("new_queued_since"),
    )
)


def schedule_out(schedule: Schedule, last: ScheduleFire | None = None) -> ScheduleOut:
    return ScheduleOut(
        name=schedule.name,
        target=Target(action=schedule.target_action, args=schedule.target_args),
        trigger=schedule.trigger,
        timezone=schedule.timezone,
        calendars=schedule.calendars,
        enabled=schedule.enabled,
        misfire=Misfire(policy=schedule.misfire_policy, grace_seconds=schedule.misfire_grace_seconds),
        overlap=schedule.overlap,
        jitter_seconds=schedule.jitter_seconds,
        description=schedule.description,
        tags=schedule.tags,
        next_fire_at=schedule.next_fire_at,
        paused=schedule.paused,
        broken=schedule.broken,
        owner=schedule.owner,
        from_config=schedule.from_config,
        window_end=schedule.window_end,
        last_fire=None if last is None else last_fire(last),
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
    )


def last_fire(fire: ScheduleFire) -> LastFire:
    return LastFire(
        planned_at=fire.planned_at,
        fired_at=fire.fired_at,
        outcome=Outcome(fire.outcome),
        lateness_seconds=round((fire.fired_at - fire.planned_at).total_seconds(), 3),
    )


def fire_out(fire: ScheduleFire) -> FireOut:
    return FireOut(
        id=fire.id,
        schedule=fire.schedule,
        planned_at=fire.planned_at,
        fired_at=fire.fired_at,
        action=fire.action,
        activity_id=fire.activity_id,
        outcome=Outcome(fire.outcome),
        error=fire.error,
        missed=fire.missed,
    )


def calendar_out(calendar: Calendar) -> CalendarOut:
    return CalendarOut(
        name=calendar.name,
        dates=calendar.dates,
        holidays=[Holidays(**item) for item in calendar.holidays],
        description=calendar.description,
        from_config=calendar.from_config,
        created_at=calendar.created_at,
    )


FIRE_ID = ScheduleFire.id


def all_schedules_query() -> Select[Any]:
    return select(Schedule)


def calendars_query() -> Select[Any]:
    return select(Calendar)


def find_schedule(session: Session, name: str, *, lock: bool = False) -> Schedule:
    stmt = select(Schedule).where(Schedule.name == name)
    schedule: Schedule | None = session.scalar(stmt.with_for_update() if lock else stmt)
    if schedule is None:
        raise NotFound(f"no schedule named {name!r}", details={"schedule": name})
    return schedule


def schedule_exists(session: Session, name: str) -> bool:
    return session.scalar(select(Schedule.id).where(Schedule.name == name)) is not None


def find_calendar(session: Session, name: str) -> Calendar:
    calendar: Calendar | None = session.scalar(select(Calendar).where(Calendar.name == name))
    if calendar is None:
        raise NotFound(f"no calendar named {name!r}", details={"calendar": name})
    return calendar


def calendars_named(session: Session, names: list[str]) -> dict[str, Calendar]:
    if not names:
        return {}
    return {c.name: c for c in session.scalars(select(Calendar).where(Calendar.name.in_(sorted(set(names)))))}


def calendar_exists(session: Session, name: str) -> bool:
    return session.scalar(select(Calendar.id).where(Calendar.name == name)) is not None


def schedules_using_calendar(session: Session, name: str) -> list[Schedule]:
    # JSON lists are not indexed alike on both stores; calendars are few and schedules read once here.
    return [s for s in session.scalars(select(Schedule)) if name in (s.calendars or [])]


def last_fires(session: Session, names: list[str]) -> dict[str, ScheduleFire]:
    """The newest fire of each of `names`."""
    if not names:
        return {}
    newest = select(func.max(ScheduleFire.id)).where(ScheduleFire.schedule.in_(names)).group_by(ScheduleFire.schedule)
    return {fire.schedule: fire for fire in session.scalars(select(ScheduleFire).where(ScheduleFire.id.in_(newest)))}


def fires_query(schedule: str, *, since: datetime | None, until: datetime | None, outcome: str | None) -> Select[Any]:
    stmt = select(ScheduleFire).where(ScheduleFire.schedule == schedule)
    if since is not None:
        stmt = stmt.where(ScheduleFire.planned_at >= since)
    if until is not None:
        stmt = stmt.where(ScheduleFire.planned_at < until)
    if outcome is not None:
        stmt = stmt.where(ScheduleFire.outcome == outcome)
    return stmt


def fired_at_times(session: Session, schedule: str, planned: list[datetime]) -> set[datetime]:
    """Which of the `planned` times of `schedule` have a fire row."""
    if not planned:
        return set()
    stmt = select(ScheduleFire.planned_at).where(
        ScheduleFire.schedule == schedule, ScheduleFire.planned_at.in_(planned)
    )
    return {as_aware(moment) for moment in session.scalars(stmt)}


def run_event_schedules(session: Session) -> list[Schedule]:
    """Every schedule with a run_event trigger (for the chain's cycle check)."""
    return list(session.scalars(select(Schedule).where(Schedule.trigger_kind == "run_event")))


def touched_by_run(session: Session, robot: str) -> list[Schedule]:
    """The schedules a run of `robot` ending concerns: its run_event schedules, and those acting on it with a
    window open or a fire queued."""
    waiting = or_(Schedule.window_end.is_not(None), Schedule.queued_since.is_not(None))
    stmt = select(Schedule).where(
        or_(
            and_(Schedule.trigger_kind == "run_event", Schedule.event_robot == robot),
            and_(Schedule.target_robot == robot, waiting),
        )
    )
    return list(session.scalars(stmt.order_by(Schedule.id)))


@dataclass(frozen=True)
class SweepKeys:
    """What the schedules not broken depend on: their actions, robots and owners (users), each named once."""

    actions: set[str]
    robots: set[str]
    owners: set[str]


_HEALTHY = Schedule.broken.is_(None)
_OWNED = Schedule.owner_via.not_in(("system", "cli"))  # the others act as the system, not as a user
_SWEPT = (
    Schedule.id,
    Schedule.name,
    Schedule.target_action,
    Schedule.target_robot,
    Schedule.event_robot,
    Schedule.owner,
    Schedule.owner_via,
)


def sweep_keys(session: Session) -> SweepKeys:
    """Distinct values only: the sweep checks each action, robot and owner once, however many schedules name it,
    and loads no schedule unless one of them is gone."""

    def distinct(column: Any, *where: Any) -> set[str]:
        return set(session.scalars(select(column).where(_HEALTHY, column.is_not(None), *where).distinct()))

    robots = distinct(Schedule.target_robot) | distinct(Schedule.event_robot)
    return SweepKeys(distinct(Schedule.target_action), robots, distinct(Schedule.owner, _OWNED))


def sweep_suspects(session: Session, actions: set[str], robots: set[str], owners: set[str]) -> list[Schedule]:
    """The schedules not broken that name one of the gone `actions`, `robots` or `owners`, with only the columns
    the sweep reads."""
    named = or_(
        Schedule.target_action.in_(sorted(actions)),
        Schedule.target_robot.in_(sorted(robots)),
        Schedule.event_robot.in_(sorted(robots)),
        and_(Schedule.owner.in_(sorted(owners)), _OWNED),
    )
    stmt = select(Schedule).options(load_only(*_SWEPT)).where(_HEALTHY, named).order_by(Schedule.id)
    return list(session.scalars(stmt))


def all_schedules(session: Session) -> list[Schedule]:
    return list(session.scalars(select(Schedule).order_by(Schedule.id)))


_ACTIVE = and_(Schedule.enabled.is_(True), Schedule.paused.is_(False))


def due(session: Session, now: datetime, limit: int) -> list[Schedule]:
    """Active schedules whose next fire is at or before `now`, earliest first; also a window schedule paused or
    disabled inside its window (its robot is stopped: the window ends)."""
    stmt = select(Schedule).where(*_due_at(now)).order_by(Schedule.next_fire_at).limit(limit)
    return list(session.scalars(stmt))


def _due_at(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Schedule.next_fire_at <= now,
        or_(_ACTIVE, Schedule.window_end.is_not(None)),
        Schedule.broken.is_(None),
    )


def queued(session: Session) -> list[Schedule]:
    """Schedules holding a fire until their robot's active run ends."""
    return list(session.scalars(select(Schedule).where(Schedule.queued_since.is_not(None), Schedule.broken.is_(None))))


def next_due_and_count(session: Session) -> tuple[datetime, int] | None:
    """The earliest next fire of an active schedule, and how many fall due then (a herd is read ahead)."""
    moment = next_due(session)
    if moment is None:
        return None
    count = session.scalar(select(func.count()).select_from(Schedule).where(*_due_at(moment)))
    return moment, int(count or 0)


def next_due(session: Session) -> datetime | None:
    """The earliest next fire of an active schedule: when the engine must wake."""
    stmt = select(func.min(Schedule.next_fire_at)).where(
        and_(or_(_ACTIVE, Schedule.window_end.is_not(None)), Schedule.broken.is_(None))
    )
    value: datetime | None = session.scalar(stmt)
    if value is not None and value.tzinfo is None:  # SQLite's min() may come back without its zone
        value = value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Move:
    """One schedule's fence: its next fire moves from `read` (the value the engine read) to the new values."""

    schedule_id: int
    read: datetime | None
    fire_at: datetime | None
    planned_at: datetime | None
    window_end: datetime | None
    queued_since: datetime | None


# Every fence of a chunk in one statement whose text never changes (compiled once): the moves travel as one JSON
# parameter that the database expands into rows. On SQLite the times are compared as the text they are stored as.
_MOVE_MANY = {
    "sqlite": text(
        "UPDATE schedules SET next_fire_at = json_extract(m.value, '$.f'), "
        "next_planned_at = json_extract(m.value, '$.p'), window_end = json_extract(m.value, '$.w'), "
        "queued_since = json_extract(m.value, '$.q') FROM json_each(:moves) AS m "
        "WHERE schedules.id = json_extract(m.value, '$.i') AND schedules.next_fire_at = json_extract(m.value, '$.r') "
        "RETURNING schedules.id"
    ),
    "postgresql": text(
        "UPDATE schedules SET next_fire_at = m.f, next_planned_at = m.p, window_end = m.w, queued_since = m.q "
        "FROM json_to_recordset(CAST(:moves AS json)) AS m(i integer, r timestamptz, f timestamptz, p timestamptz, "
        "w timestamptz, q timestamptz) WHERE schedules.id = m.i AND schedules.next_fire_at = m.r "
        "RETURNING schedules.id"
    ),
}


def move_many(session: Session, moves: list[Move]) -> set[int]:
    """Every fence of a chunk in one statement; the ids of the schedules that moved. One another engine moved first
    (its next fire is no longer the value read) is not among them."""
    if not moves:
        return set()
    dialect = session.get_bind().dialect
    stored = UTCDateTime().dialect_impl(dialect).bind_processor(dialect) if dialect.name == "sqlite" else None

    def time_of(moment: datetime | None) -> str | None:
        if moment is None:
            return None
        return str(stored(moment)) if stored is not None else moment.isoformat()

    document = [
        {
            "i": move.schedule_id,
            "r": time_of(move.read),
            "f": time_of(move.fire_at),
            "p": time_of(move.planned_at),
            "w": time_of(move.window_end),
            "q": time_of(move.queued_since),
        }
        for move in moves
    ]
    moved = session.execute(_MOVE_MANY[dialect.name], {"moves": json.dumps(document)})
    return {int(schedule_id) for schedule_id in moved.scalars()}


def move_next(
    session: Session,
    schedule_id: int,
    read_fire_at: datetime | None,
    *,
    fire_at: datetime | None,
    planned_at: datetime | None,
    window_end: datetime | None,
    queued_since: datetime | None,
) -> bool:
    """Move a schedule's next fire from `read_fire_at` (the fence); False when another engine moved it first."""
    result = session.execute(
        _MOVE_NEXT,
        {
            "schedule_id": schedule_id,
            "read_fire_at": read_fire_at,
            "new_fire_at": fire_at,
            "new_planned_at": planned_at,
            "new_window_end": window_end,
            "new_queued_since": queued_since,
        },
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def day_calendar(calendar: Calendar) -> DayCalendar:
    """A stored calendar as the timing rules read it."""
    return DayCalendar(
        name=calendar.name,
        dates=frozenset(date.fromisoformat(day) for day in calendar.dates),
        holidays=tuple((item["country"], item.get("subdiv")) for item in calendar.holidays),
    )


def day_calendars(session: Session, names: list[str]) -> list[DayCalendar]:
    """The calendars `names` for the timing rules; those deleted since are left out."""
    found = calendars_named(session, names)
    return [day_calendar(found[name]) for name in names if name in found]


def delete_fires(session: Session, schedule: str) -> None:
    session.execute(delete(ScheduleFire).where(ScheduleFire.schedule == schedule))


def take_queued(session: Session, schedule_id: int, read: datetime) -> bool:
    """Clear a schedule's queued fire if it is still the one read (the fence of a queued fire)."""
    result = session.execute(
        update(_SCHEDULES)
        .where(_SCHEDULES.c.id == schedule_id, _SCHEDULES.c.queued_since == read)
        .values(queued_since=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def queued_fire(session: Session, schedule: str, planned_at: datetime) -> ScheduleFire | None:
    stmt = select(ScheduleFire).where(
        ScheduleFire.schedule == schedule, ScheduleFire.planned_at == planned_at, ScheduleFire.outcome == "queued"
    )
    fire: ScheduleFire | None = session.scalar(stmt)
    return fire


# Core, not the ORM, for the engine's hot path: one statement for a chunk's fires, no unit of work.
_SET_RESULT = (
    update(_FIRES)
    .where(_FIRES.c.id == bindparam("fire_id"))
    .values(activity_id=bindparam("new_activity_id"), outcome=bindparam("new_outcome"), error=bindparam("new_error"))
)


def insert_fires(session: Session, rows: list[dict[str, Any]]) -> dict[tuple[str, datetime], int]:
    """Insert fire rows (dicts of ScheduleFire's columns) in one statement; one whose schedule and planned time
    another engine wrote first is left out. The ids of those written, by (schedule, planned_at)."""
    if not rows:
        return {}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(_FIRES) if dialect == "postgresql" else sqlite.insert(_FIRES)
    statement = insert.on_conflict_do_nothing(index_elements=["schedule", "planned_at"]).returning(
        _FIRES.c.id, _FIRES.c.schedule, _FIRES.c.planned_at
    )
    written = session.connection().execute(statement, rows)
    return {(schedule, as_aware(planned)): fire_id for fire_id, schedule, planned in written}


def as_aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def set_fire_results(session: Session, results: Sequence[tuple[int, int | None, str, str | None]]) -> None:
    """(fire id, activity id, outcome, error) of each fire, in one statement."""
    if results:
        session.connection().execute(
            _SET_RESULT,
            [
                {"fire_id": fire_id, "new_activity_id": activity, "new_outcome": outcome, "new_error": error}
                for fire_id, activity, outcome, error in results
            ],
        )


def mark_broken(session: Session, schedule_id: int, reason: str) -> None:
    session.execute(update(_SCHEDULES).where(_SCHEDULES.c.id == schedule_id).values(broken=reason))


def recheck_at(session: Session, schedule_id: int, read: datetime | None, at: datetime) -> bool:
    """Bring a schedule's next fire forward to `at` (a window's robot ended inside its window)."""
    result = session.execute(
        update(_SCHEDULES)
        .where(_SCHEDULES.c.id == schedule_id, _SCHEDULES.c.next_fire_at == read)
        .values(next_fire_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
