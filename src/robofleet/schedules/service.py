"""Schedules and calendars: the only code that changes them. Each change checks the permission (schedules:write,
and that the writer could submit the target itself), validates everything before anything is saved, and is
audited in its transaction; the engine (engine.py) is woken after each, so a changed next fire counts at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from robofleet.auth.audit import audited
from robofleet.auth.principal import Principal, system_principal
from robofleet.errors import ConfigError, Conflict, Forbidden, Invalid, NotFound, StoreUnavailable
from robofleet.queues.service import QueuesService
from robofleet.robots.service import RobotsService
from robofleet.runtime import Loop, Tasks, Timers
from robofleet.runtime.leader import Leader
from robofleet.runtime.notices import notices_for
from robofleet.schedules import store_ops
from robofleet.schedules.calendars import next_allowed, preview
from robofleet.schedules.chains import edge_of
from robofleet.schedules.checks import (
    check_calendar_holidays,
    check_schedule,
    check_trigger,
    invalid,
    require_may_act,
    target_robot,
)
from robofleet.schedules.engine import SWEEP_SECONDS, Engine, plan_next
from robofleet.schedules.models import Calendar, Schedule
from robofleet.schedules.schemas import (
    CalendarCreate,
    CalendarOut,
    CalendarUpdate,
    FireOut,
    Planned,
    PlannedFire,
    ScheduleCreate,
    ScheduleFields,
    ScheduleOut,
    ScheduleUpdate,
)
from robofleet.schedules.triggers import OnceTrigger, Trigger
from robofleet.settings.declared import read_declared
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, paginate

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

log = logging.getLogger(__name__)
# The engine's pass when nothing is due sooner: a timer wakes it at the next fire, this is only the safety net.
SAFETY_PASS_SECONDS = 60.0
MAX_PREVIEW = 500
MAX_PLANNED_DAYS = 31
MAX_PLANNED_FIRES = 10_000
MAX_PLANNED_PER_SCHEDULE = 1_000
NOTICES = "robofleet_schedules"  # the PostgreSQL channel of "a schedule changed"


class SchedulesService:
    """Built by the Domain's factory with the orchestrator; owns the engine's loop, its timer and the leader."""

    def __init__(self, app: Orchestrator) -> None:
        self.app = app
        self.store = app.store
        self.registry = app.registry
        self.leader: Leader = app.leader  # the orchestrator's, shared with the activity processor's recovery
        # Other replicas change schedules too: the leader hears of it by a notice (PostgreSQL), not by polling.
        self.notices = notices_for(app.store, NOTICES)
        self.engine = Engine(self)
        self.loop = Loop("schedules", SAFETY_PASS_SECONDS, self.engine.run_once, gate=self.leader.leads)
        # A loop of its own: a sweep reads every schedule, and must not hold the fires that fall due meanwhile.
        self.sweep = Loop("schedules sweep", SWEEP_SECONDS, self.engine.sweep_broken, gate=self.leader.leads)
        self.timers = Timers()
        self.tasks = Tasks()
        self._event_loop: asyncio.AbstractEventLoop | None = None

    @property
    def robots(self) -> RobotsService:
        if self.app.robots is None:
            raise StoreUnavailable("robots are not available yet: the store is not ready")
        return self.app.robots

    async def startup(self) -> None:
        """Apply the settings file's calendars and schedules, then start leading (or waiting to) and firing."""
        self._event_loop = asyncio.get_running_loop()
        settings = self.app.settings
        await asyncio.to_thread(self.apply_config, settings.calendars, settings.schedules)
        if self.notices is not None:
            await self.notices.start(self.loop.wake)
        await self.leader.start(self._gained)
        self.loop.start()
        self.sweep.start()
        self.tasks.spawn(self.engine.follow_runs(), name="schedules run events")

    def _gained(self) -> None:
        """This replica leads now: its first pass looks for run ends the one before did not handle."""
        self.engine.caught_up = False
        self.loop.wake()

    async def stop(self) -> None:
        """Stop firing and give up the leadership; every schedule's next fire stays stored."""
        await self.loop.stop()
        await self.sweep.stop()
        await self.timers.stop()
        await self.tasks.stop()
        if self.notices is not None:
            await self.notices.stop()
        await self.leader.stop()

    def changed(self) -> None:
        """A schedule changed: the engine looks again now, this replica's and the leader's (blocking: call it from
        a worker thread, after the change committed)."""
        if self._event_loop is not None and not self._event_loop.is_closed():
            self._event_loop.call_soon_threadsafe(self.loop.wake)
            self._event_loop.call_soon_threadsafe(self.engine.announce_change, [])
        if self.notices is not None:
            try:
                self.notices.send()
            except StoreUnavailable as exc:  # the change is stored; the leader's safety pass finds it
                log.warning("could not tell the other replicas of a schedule change: %s", exc.message)

    # ---- reading ------------------------------------------------------------------------------------------------

    def _visibility(self, principal: Principal) -> Callable[[Schedule], bool]:
        """Which schedules `principal` may see: those whose robots (target, run event) are in its robots:read scope.
        A schedule of a robot it may not see is as unknown as none."""
        scope = self.robots.robot_scope(principal)
        if scope is None:
            return lambda schedule: True

        def visible(schedule: Schedule) -> bool:
            robots = [target_robot(schedule.target_action, schedule.target_args), (schedule.trigger or {}).get("robot")]
            return all(robot is None or robot in scope.names for robot in robots)

        return visible

    def _find_visible(self, session: Session, principal: Principal, name: str, *, lock: bool = False) -> Schedule:
        schedule = store_ops.find_schedule(session, name, lock=lock)
        if not self._visibility(principal)(schedule):
            raise NotFound(f"no schedule named {name!r}", details={"schedule": name})
        return schedule

    def list_schedules(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[ScheduleOut]:
        principal.require("schedules:read")
        visible = self._visibility(principal)
        with self.store.transaction() as session:
            page = paginate(session, store_ops.all_schedules_query(), Schedule.id, limit=limit, cursor=cursor)
            rows = [row for row in page.items if visible(row)]
            last = store_ops.last_fires(session, [row.name for row in rows])
            return Page([store_ops.schedule_out(row, last.get(row.name)) for row in rows], page.next_cursor)

    def get_schedule(self, principal: Principal, name: str) -> ScheduleOut:
        principal.require("schedules:read")
        with self.store.transaction() as session:
            row = self._find_visible(session, principal, name)
            return store_ops.schedule_out(row, store_ops.last_fires(session, [name]).get(name))

    def preview(self, principal: Principal, name: str, count: int) -> list[datetime]:
        """The next `count` fires after now, calendars applied (a window's: its starts)."""
        principal.require("schedules:read")
        if not 1 <= count <= MAX_PREVIEW:
            raise invalid("count", f"must be between 1 and {MAX_PREVIEW}")
        with self.store.transaction() as session:
            row = self._find_visible(session, principal, name)
            calendars = store_ops.day_calendars(session, row.calendars)
        trigger = self.engine.trigger_of(row)
        return preview(trigger, utcnow(), ZoneInfo(row.timezone), calendars, count)

    def preview_trigger(
        self, principal: Principal, spec: dict[str, Any], timezone: str, calendar_names: list[str], count: int
    ) -> list[datetime]:
        """The next `count` fires of a trigger not saved (yet): checked as a schedule's would be (422 naming the
        field), calendars applied."""
        principal.require("schedules:read")
        if not 1 <= count <= MAX_PREVIEW:
            raise invalid("count", f"must be between 1 and {MAX_PREVIEW}")
        trigger = check_trigger(spec, timezone)
        with self.store.transaction() as session:
            known = store_ops.calendars_named(session, calendar_names)
            unknown = [name for name in calendar_names if name not in known]
            if unknown:
                raise invalid("calendars", f"no calendar named {unknown[0]!r}", "unknown_calendar")
            calendars = [store_ops.day_calendar(known[name]) for name in calendar_names]
        return preview(trigger, utcnow(), ZoneInfo(timezone), calendars, count)

    def fires(
        self,
        principal: Principal,
        name: str,
        *,
        since: datetime | None,
        until: datetime | None,
        outcome: str | None,
        limit: int,
        cursor: str | None,
    ) -> Page[FireOut]:
        """The schedule's fires, newest first."""
        principal.require("schedules:read")
        for field, moment in (("since", since), ("until", until)):
            if moment is not None and moment.tzinfo is None:
                raise invalid(field, "give a time with a UTC offset, e.g. 2026-01-05T00:00:00Z")
        with self.store.transaction() as session:
            self._find_visible(session, principal, name)
            stmt = store_ops.fires_query(name, since=since, until=until, outcome=outcome)
            page = paginate(session, stmt, store_ops.FIRE_ID, limit=limit, cursor=cursor, descending=True)
            return Page([store_ops.fire_out(fire) for fire in page.items], page.next_cursor)

    def planned(self, principal: Principal, start: datetime, end: datetime) -> Planned:
        """Every planned fire of the active schedules the caller sees in [start, end): at most MAX_PLANNED_DAYS
        long, at most MAX_PLANNED_FIRES fires and MAX_PLANNED_PER_SCHEDULE of one schedule (`truncated` says when
        there were more)."""
        principal.require("schedules:read")
        if start.tzinfo is None or end.tzinfo is None:
            raise invalid("from", "give times with a UTC offset, e.g. 2026-01-05T00:00:00Z")
        if end <= start:
            raise invalid("to", "must come after from")
        if end - start > timedelta(days=MAX_PLANNED_DAYS):
            raise invalid("to", f"the range may span {MAX_PLANNED_DAYS} days at most")
        visible = self._visibility(principal)
        with self.store.transaction() as session:
            rows = [
                row
                for row in store_ops.all_schedules(session)
                if visible(row) and row.enabled and not row.paused and row.broken is None
            ]
            calendars = {row.name: store_ops.day_calendars(session, row.calendars) for row in rows}
        fires: list[PlannedFire] = []
        truncated = False
        for row in rows:
            trigger = self.engine.trigger_of(row)
            tz = ZoneInfo(row.timezone)
            at = next_allowed(trigger, start - timedelta(microseconds=1), tz, calendars[row.name])
            listed = 0  # one schedule firing every second must not crowd the others out of the range
            while at is not None and at < end:
                if len(fires) >= MAX_PLANNED_FIRES or listed >= MAX_PLANNED_PER_SCHEDULE:
                    truncated = True
                    break
                fires.append(PlannedFire(schedule=row.name, at=at, action=row.target_action))
                listed += 1
                at = next_allowed(trigger, at, tz, calendars[row.name])
        fires.sort(key=lambda fire: (fire.at, fire.schedule))
        return Planned(fires=fires, truncated=truncated)

    # ---- writing ------------------------------------------------------------------------------------------------

    def create_schedule(self, principal: Principal, data: ScheduleCreate, *, from_config: bool = False) -> ScheduleOut:
        with audited(self.store, principal, "schedule.create", data.name) as session:
            principal.require("schedules:write")
            if store_ops.schedule_exists(session, data.name):
                raise Conflict(f"a schedule named {data.name!r} exists already", details={"schedule": data.name})
            row = Schedule(name=data.name, from_config=from_config, paused=False)
            self._write(session, principal, row, ScheduleFields(**data.model_dump(exclude={"name"})), creating=True)
            session.add(row)
            session.flush()
            out = store_ops.schedule_out(row)
        self.changed()
        return out

    def update_schedule(self, principal: Principal, name: str, data: ScheduleUpdate) -> ScheduleOut:
        changes = data.model_dump(exclude_unset=True)
        with audited(self.store, principal, "schedule.update", name, {"fields": sorted(changes)}) as session:
            principal.require("schedules:write")
            row = self._find_visible(session, principal, name, lock=True)
            require_may_act(self.registry, self.robots, principal, row.target_action, self._robot_of(row))
            current = store_ops.schedule_out(row).model_dump(include=set(ScheduleFields.model_fields))
            merged = ScheduleFields(**{**current, **changes})
            self._write(session, principal, row, merged, creating=False)
            _end_window_if_let_go(row)
            session.flush()
            out = store_ops.schedule_out(row, store_ops.last_fires(session, [name]).get(name))
        self.changed()
        return out

    def delete_schedule(self, principal: Principal, name: str) -> None:
        with audited(self.store, principal, "schedule.delete", name) as session:
            principal.require("schedules:write")
            row = self._find_visible(session, principal, name, lock=True)
            require_may_act(self.registry, self.robots, principal, row.target_action, self._robot_of(row))
            store_ops.delete_fires(session, name)
            session.delete(row)
        self.changed()

    def set_paused(self, principal: Principal, name: str, paused: bool) -> ScheduleOut:
        """Pause (fires nothing, its next fire kept) or resume (planned again from now: what fell due while it was
        paused is not a misfire, it was asked for)."""
        with audited(self.store, principal, "schedule.pause" if paused else "schedule.resume", name) as session:
            principal.require("schedules:write")
            row = self._find_visible(session, principal, name, lock=True)
            require_may_act(self.registry, self.robots, principal, row.target_action, self._robot_of(row))
            if row.paused != paused:
                row.paused = paused
                if not paused:
                    self._plan(session, row, self.engine.trigger_of(row))
                _end_window_if_let_go(row)
            session.flush()
            out = store_ops.schedule_out(row, store_ops.last_fires(session, [name]).get(name))
        self.changed()
        return out

    async def fire_now(self, principal: Principal, name: str) -> FireOut:
        """Fire the schedule's target now, as the caller (who must be allowed to submit it), recorded as a fire."""

        def check() -> Schedule:
            with audited(self.store, principal, "schedule.fire", name) as session:
                principal.require("schedules:write")
                row = self._find_visible(session, principal, name)
                require_may_act(self.registry, self.robots, principal, row.target_action, self._robot_of(row))
                if row.broken is not None:
                    raise Conflict(f"schedule {name!r} is broken: {row.broken}", details={"broken": row.broken})
                return row

        row = await asyncio.to_thread(check)
        return await self.engine.fire_manual(principal, row)

    def _robot_of(self, row: Schedule) -> str | None:
        return target_robot(row.target_action, row.target_args)

    def _write(
        self, session: Session, principal: Principal, row: Schedule, fields: ScheduleFields, *, creating: bool
    ) -> None:
        """Check every field, then set them; the writer becomes the owner whose rights its fires have."""
        chains = [
            edge
            for other in store_ops.run_event_schedules(session)
            if other.name != row.name
            for edge in [edge_of(other.trigger, other.target_action, other.target_args)]
            if edge is not None
        ]
        checked = check_schedule(
            self.registry,
            self.robots,
            principal,
            action=fields.target.action,
            args=fields.target.args,
            trigger=fields.trigger,
            timezone=fields.timezone,
            chains=chains,
            queue_exists=lambda name: self._queue_exists(principal, name),
        )
        known = store_ops.calendars_named(session, fields.calendars)
        unknown = [name for name in fields.calendars if name not in known]
        if unknown:
            raise invalid("calendars", f"no calendar named {unknown[0]!r}", "unknown_calendar")
        spec = checked.trigger.spec()
        # A one-off already past would never fire: refused, not stored as a schedule that silently does nothing.
        # (The settings file keeps its one-offs that fired: it is applied again at every start.)
        trigger = checked.trigger
        if isinstance(trigger, OnceTrigger) and spec != row.trigger and not row.from_config and trigger.at <= utcnow():
            raise invalid("trigger.at", f"{trigger.at.isoformat()} is in the past")
        timing_changed = (
            creating
            or row.broken is not None
            or (
                (spec, fields.timezone, fields.calendars, fields.jitter_seconds)
                != (row.trigger, row.timezone, row.calendars, row.jitter_seconds)
            )
        )
        row.target_action = fields.target.action
        row.target_args = checked.args
        row.trigger = spec
        row.trigger_kind = checked.trigger.kind
        row.target_robot = checked.robot
        event_robot = spec.get("robot") if checked.trigger.kind == "run_event" else None
        row.event_robot = event_robot if isinstance(event_robot, str) else None
        row.timezone = fields.timezone
        row.calendars = list(fields.calendars)
        row.enabled = fields.enabled
        row.misfire_policy = fields.misfire.policy
        row.misfire_grace_seconds = fields.misfire.grace_seconds
        row.overlap = fields.overlap
        row.jitter_seconds = fields.jitter_seconds
        row.description = fields.description
        row.tags = list(fields.tags)
        row.owner = principal.username
        row.owner_via = principal.via
        row.owner_scopes = list(principal.scopes)
        row.broken = None
        if timing_changed:
            self._plan(session, row, checked.trigger)

    def _queue_exists(self, principal: Principal, name: str) -> bool:
        """Whether the queue exists for `principal` (one it may not read is as unknown as none)."""
        try:
            self.queues.get_queue(principal, name)
        except (NotFound, Forbidden):
            return False
        return True

    @property
    def queues(self) -> QueuesService:
        found = self.app.service("queues")
        assert isinstance(found, QueuesService)
        return found

    def _plan(self, session: Session, row: Schedule, trigger: Trigger) -> None:
        """The next fire from now (a window's: now, when inside it, so the robot is started at once)."""
        now = utcnow()
        calendars = store_ops.day_calendars(session, row.calendars)
        planned, fire_at = plan_next(trigger, now, ZoneInfo(row.timezone), calendars, row.jitter_seconds)
        if trigger.kind == "window" and self.engine.window_now(trigger, now, ZoneInfo(row.timezone), calendars):
            planned, fire_at = now, now
        row.next_planned_at, row.next_fire_at = planned, fire_at
        row.window_end = None
        row.queued_since = None

    # ---- calendars ----------------------------------------------------------------------------------------------

    def list_calendars(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[CalendarOut]:
        principal.require("schedules:read")
        with self.store.transaction() as session:
            page = paginate(session, store_ops.calendars_query(), Calendar.id, limit=limit, cursor=cursor)
            return Page([store_ops.calendar_out(row) for row in page.items], page.next_cursor)

    def get_calendar(self, principal: Principal, name: str) -> CalendarOut:
        principal.require("schedules:read")
        with self.store.transaction() as session:
            return store_ops.calendar_out(store_ops.find_calendar(session, name))

    def create_calendar(self, principal: Principal, data: CalendarCreate, *, from_config: bool = False) -> CalendarOut:
        with audited(self.store, principal, "calendar.create", data.name) as session:
            principal.require("schedules:write")
            if store_ops.calendar_exists(session, data.name):
                raise Conflict(f"a calendar named {data.name!r} exists already", details={"calendar": data.name})
            holidays = [item.model_dump() for item in data.holidays]
            check_calendar_holidays(holidays)
            row = Calendar(
                name=data.name,
                dates=sorted({day.isoformat() for day in data.dates}),
                holidays=holidays,
                description=data.description,
                from_config=from_config,
            )
            session.add(row)
            session.flush()
            return store_ops.calendar_out(row)

    def update_calendar(self, principal: Principal, name: str, data: CalendarUpdate) -> CalendarOut:
        changes = data.model_dump(exclude_unset=True)
        with audited(self.store, principal, "calendar.update", name, {"fields": sorted(changes)}) as session:
            principal.require("schedules:write")
            row = store_ops.find_calendar(session, name)
            if data.holidays is not None:
                holidays = [item.model_dump() for item in data.holidays]
                check_calendar_holidays(holidays)
                row.holidays = holidays
            if data.dates is not None:
                row.dates = sorted({day.isoformat() for day in data.dates})
            if data.description is not None:
                row.description = data.description
            session.flush()
            for schedule in store_ops.schedules_using_calendar(session, name):
                if schedule.broken is None and not schedule.paused:
                    self._plan(session, schedule, self.engine.trigger_of(schedule))
            out = store_ops.calendar_out(row)
        self.changed()
        return out

    def delete_calendar(self, principal: Principal, name: str) -> None:
        with audited(self.store, principal, "calendar.delete", name) as session:
            principal.require("schedules:write")
            row = store_ops.find_calendar(session, name)
            users = [schedule.name for schedule in store_ops.schedules_using_calendar(session, name)]
            if users:
                raise Conflict(
                    f"calendar {name!r} is used by schedule(s) {', '.join(users)}",
                    details={"calendar": name, "schedules": users},
                )
            session.delete(row)

    # ---- the settings file --------------------------------------------------------------------------------------

    def apply_config(self, calendars: list[Any], schedules: list[Any]) -> None:
        """Calendars and schedules of the settings file, created or brought up to date at every start and marked
        from config. A schedule whose timing did not change keeps its stored next fire (so a restart applies its
        misfire policy to what fell due meanwhile)."""
        principal = system_principal("config")
        for item in calendars:
            calendar = read_declared(CalendarCreate, item, "calendars")
            with self.store.transaction() as session:
                exists = store_ops.calendar_exists(session, calendar.name)
            if exists:
                self.update_calendar(principal, calendar.name, CalendarUpdate(**calendar.model_dump(exclude={"name"})))
            else:
                self.create_calendar(principal, calendar, from_config=True)
        for item in schedules:
            data = read_declared(ScheduleCreate, item, "schedules")
            with self.store.transaction() as session:
                exists = store_ops.schedule_exists(session, data.name)
            try:
                if exists:
                    self.update_schedule(principal, data.name, ScheduleUpdate(**data.model_dump(exclude={"name"})))
                else:
                    self.create_schedule(principal, data, from_config=True)
            except Invalid as exc:
                raise ConfigError(f"schedules.{data.name}: {exc.message}") from None


def _end_window_if_let_go(row: Schedule) -> None:
    """A window schedule paused or disabled inside its window lets its robot go: the engine stops it now (the
    intent is the stored next fire, so it survives a restart)."""
    if row.window_end is not None and (row.paused or not row.enabled):
        row.next_fire_at = utcnow()
