"""The engine: fires what is due, through the activity processor, and records every fire.

One pass (the service's `Loop`, on the leader only) reads the schedules whose stored `next_fire_at` has come. For
each, in ONE transaction, it moves `next_fire_at` on — only from the value it read (`store_ops.move_next`, the
fence: a second engine that read the same value moves nothing and fires nothing) — and inserts the fire rows
(unique per schedule and planned time). Only then is the activity submitted, and its id recorded on the row. A
crash between the two leaves a fire row without an activity: at most once, never twice. A timer wakes the loop at
the earliest next fire; idle, the loop passes only every SAFETY_PASS_SECONDS.

Who a fire acts as: `schedule:<name>`, with the rights its owner (the schedule's last writer) has at fire time —
the owner's current roles and the scopes of the token it wrote with — never more. An owner disabled or deleted
since leaves the schedule broken. Schedules written by the settings file or the local CLI act as the system.

Misfires (fires that fell due while no engine ran; `misfire_plan`): with `skip`, the fires later than the grace
are recorded as ONE `skipped_misfire` row (`missed` counts the others) and a fire still within the grace fires;
with `run_once`, all of them become ONE fire, however late. Never one fire per missed slot.

Overlap, for robots.start targets whose robot has an active run: `skip` records `skipped_overlap`; `queue`
records `queued` and fires once the robot has no active run (several queued fires are one); `parallel` starts
anyway (the robot's max_concurrent still decides).

Windows keep a robot running: inside the window it is started when it has no active run, unless its last run
ended inside this window by a stop that was not this schedule's (a manual stop holds until a manual start or the
next window); at the window's end its active runs are stopped safely. Run events fire the run_event schedules
whose trigger matches a run's end, on whichever replica saw the end (the unique fire row keeps it to once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from robofleet.activities.processor import Prepared
from robofleet.activities.schemas import ActivityIn, ActivityOut
from robofleet.auth.principal import Principal, principal_for_user, schedule_actor, system_principal
from robofleet.auth.users import find_user
from robofleet.errors import Invalid, NotFound, RobofleetError, StoreUnavailable
from robofleet.queues.service import QueuesService
from robofleet.robots.service import TOPIC as RUNS_TOPIC
from robofleet.robots.states import ACTIVE, ENDED
from robofleet.schedules import store_ops
from robofleet.schedules.calendars import Calendar as DayCalendar
from robofleet.schedules.calendars import next_allowed
from robofleet.schedules.checks import target_robot
from robofleet.schedules.models import Outcome, Schedule, ScheduleFire
from robofleet.schedules.schemas import FireOut
from robofleet.schedules.triggers import (
    QueueTrigger,
    RunEventTrigger,
    Trigger,
    TriggerError,
    WindowTrigger,
    parse_trigger,
)
from robofleet.store.base import utcnow

if TYPE_CHECKING:
    from robofleet.schedules.service import SchedulesService

log = logging.getLogger(__name__)
TOPIC = "schedules"  # the event hub's topic of fires written, for the panel's live list
BATCH = 10_000  # schedules read per pass; a full batch makes the next pass come at once
MAX_MISSED = 10_000  # missed slots counted one by one; past it the count says "at least"
WINDOW_RECHECK_SECONDS = 2.0  # a window's robot that ended is started again this much later
SWEEP_SECONDS = 30.0  # how often targets are checked for having gone (broken)
WAIT_PROCESSOR_SECONDS = 0.5
CONCURRENT_FIRES = 1000  # decided fires written in one transaction: a second's fires of 10,000 schedules in one
PREPARE_SECONDS = 0.2  # how long before the next fire the pass reads and decides it, at least
DECIDE_SECONDS = 0.000_15  # and earlier by this much per schedule due then: a herd is decided before its time
MAX_LEAD_SECONDS = 3.0
CATCH_UP_RUNS = 100  # the newest runs of a chained robot looked at for ends no engine handled
_ENDED = frozenset(str(state) for state in ENDED)
NOT_MANUAL = "max_runtime"  # who the robots service says stopped a run at its max runtime


@dataclass(frozen=True)
class MisfirePlan:
    """What one pass does with the slots that fell due: fire one (`fire`, standing for `fire_missed` more) and
    record the `skipped` ones as one row."""

    fire: datetime | None
    fire_missed: int
    skipped: tuple[datetime, ...]


def misfire_plan(slots: Sequence[datetime], now: datetime, policy: str, grace_seconds: float) -> MisfirePlan:
    """Pure: the due `slots` (oldest first, all at or before `now`) under the misfire `policy`."""
    if not slots:
        return MisfirePlan(None, 0, ())
    if policy == "run_once":
        return MisfirePlan(slots[-1], len(slots) - 1, ())
    late = tuple(slot for slot in slots if (now - slot).total_seconds() > grace_seconds)
    on_time = slots[len(late) :]
    return MisfirePlan(on_time[-1] if on_time else None, max(len(on_time) - 1, 0), late)


def due_slots(
    trigger: Trigger, first: datetime, now: datetime, tz: ZoneInfo, calendars: list[DayCalendar]
) -> list[datetime]:
    """`first` and every later fire at or before `now` (at most MAX_MISSED)."""
    return slots_and_next(trigger, first, now, tz, calendars)[0]


def slots_and_next(
    trigger: Trigger, first: datetime, now: datetime, tz: ZoneInfo, calendars: list[DayCalendar]
) -> tuple[list[datetime], datetime | None]:
    """The due slots (as `due_slots`), and the first fire after `now` when walking to them found it (the question
    that ends the walk is the next fire's: asking it again would cost a second cron walk per fire), else `now`
    itself (past MAX_MISSED: unknown, plan from `now`)."""
    slots = [first]
    while len(slots) < MAX_MISSED:
        following = next_allowed(trigger, slots[-1], tz, calendars)
        if following is None or following > now:
            return slots, following
        slots.append(following)
    return slots, now


@dataclass
class NewFire:
    planned_at: datetime
    action: str
    outcome: Outcome
    args: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    missed: int = 0
    id: int | None = None
    fired_at: datetime | None = None
    prepared: Prepared | None = None  # its activity, checked, written in the fire's transaction
    activity: ActivityOut | None = None


class Broken(Exception):
    """The schedule's target, robot or owner is gone: it is marked broken with this reason."""


@dataclass
class PassCache:
    """What one pass reads once for all its fires: the robots, the robots with an active run (a start this pass
    submits counts as one), and each owner's rights."""

    robots: set[str] | None = None
    active: set[str] | None = None
    owners: dict[tuple[str, str, tuple[str, ...]], Principal | Broken] = dataclasses.field(default_factory=dict)
    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    # Batching (a pass): the fences and fire rows of a chunk are written in one transaction, then submitted.
    batching: bool = False
    pending: list[Pending] = dataclasses.field(default_factory=list)


@dataclass
class Pending:
    """One schedule's fence and fire rows, waiting for its chunk's transaction."""

    row: Schedule
    fires: list[NewFire]
    planned: datetime | None
    fire_at: datetime | None
    window_end: datetime | None
    queued_since: datetime | None
    principal: Principal | None  # who its fires act as; None: it moves the fence only


class Engine:
    def __init__(self, service: SchedulesService) -> None:
        self.service = service
        self.app = service.app
        self.store = service.store
        self._aim: datetime | None = None  # the next fire the timer was set for
        self._lead = PREPARE_SECONDS  # how long before `_aim` the timer wakes the pass
        self.caught_up = False  # run ends missed while no engine ran: looked for when this replica begins to lead

    # ---- pure helpers -------------------------------------------------------------------------------------------

    @staticmethod
    def trigger_of(row: Schedule) -> Trigger:
        """A stored schedule's trigger (stored specs were checked when written)."""
        try:
            return parse_trigger(row.trigger, row.timezone)
        except TriggerError as exc:
            raise Invalid(f"schedule {row.name!r}: {exc.field}: {exc.message}") from None

    @staticmethod
    def window_now(
        trigger: Trigger, now: datetime, tz: ZoneInfo, calendars: list[DayCalendar]
    ) -> tuple[datetime, datetime] | None:
        """The window `now` is in, unless a calendar excludes its day."""
        if not isinstance(trigger, WindowTrigger):
            return None
        span = trigger.window_at(now)
        if span is None or any(calendar.excludes(span[0].astimezone(tz).date()) for calendar in calendars):
            return None
        return span

    # ---- the pass -----------------------------------------------------------------------------------------------

    async def run_once(self) -> None:
        """Fire every due schedule, then fire queued ones whose robot is free, then sleep until the next fire."""
        if self.app.processor is None:  # serve is still starting: the processor comes right after this service
            self.service.timers.set("next-fire", WAIT_PROCESSOR_SECONDS, self._wake)
            return
        if not self.caught_up:  # first, each time this replica begins to lead
            self.caught_up = True
            await self.catch_up_run_events()
        await self.fire_queued()  # first: a queued fire goes before a new fire of the same schedule
        # The timer wakes the pass ahead of the next fire (the more schedules fall due then, the earlier): it reads
        # and decides what falls due then ahead of time, and writes it (fires) once that time has come, never before.
        now, aim, self._aim = utcnow(), self._aim, None
        if aim is not None and timedelta(0) < aim - now <= timedelta(seconds=self._lead):
            now = aim
        due = await asyncio.to_thread(
            self._read, lambda session: _with_calendars(session, store_ops.due(session, now, BATCH))
        )
        cache = PassCache(batching=True)
        # Every decision of the pass first (ahead of the fires' time, when the timer woke the pass early), then the
        # writes chunk by chunk from that time on: each chunk's fences, fire rows and activities in one transaction.
        await asyncio.gather(*(self._fire_logged(row, calendars, now, cache) for row, calendars in due))
        pending, cache.pending = cache.pending, []
        committed: list[Pending] = []
        try:
            for start in range(0, len(pending), CONCURRENT_FIRES):
                chunk = pending[start : start + CONCURRENT_FIRES]
                committed += await self._flush(chunk, not_before=now, adopt=False)
        finally:
            # Every fire of the pass first, then their activities run (also those committed before a chunk failed):
            # in a burst, running the first chunk's activities would take the CPU from the next chunks' fires.
            for item in committed:
                self._adopt(item.row, item.fires)
        if len(due) >= BATCH:
            self.service.loop.wake()
            return
        upcoming = await asyncio.to_thread(self._read, store_ops.next_due_and_count)
        if upcoming is not None:
            self._aim, count = upcoming
            self._lead = min(MAX_LEAD_SECONDS, PREPARE_SECONDS + count * DECIDE_SECONDS)
            self.service.timers.set("next-fire", (self._aim - utcnow()).total_seconds() - self._lead, self._wake)

    async def _wake(self) -> None:
        self.service.loop.wake()

    def _read(self, query: Any) -> Any:
        with self.store.transaction() as session:
            return query(session)

    async def _fire_logged(self, row: Schedule, calendars: list[DayCalendar], now: datetime, cache: PassCache) -> None:
        try:
            await self.fire_due(row, calendars, now, cache)
        except RobofleetError as exc:
            log.warning("schedule %s: its fire failed: %s", row.name, exc.message)
        except Exception:  # one schedule's bug must not hold the others' fires until the next safety pass
            log.exception("schedule %s: its fire failed", row.name)

    async def fire_due(
        self, row: Schedule, calendars: list[DayCalendar], now: datetime, cache: PassCache | None = None
    ) -> None:
        """Fire one due schedule as the module's docstring says; `cache`: what the pass read already."""
        cache = cache or PassCache()
        try:
            trigger = parse_trigger(row.trigger, row.timezone)
            principal = await self._usable(row, cache)
        except (Broken, TriggerError) as exc:
            await self._mark_broken(row, str(exc))
            return
        tz = ZoneInfo(row.timezone)
        if isinstance(trigger, WindowTrigger):
            await self._window(row, trigger, tz, calendars, now, principal, cache)
            return
        if isinstance(trigger, RunEventTrigger):  # fired by run events only: nothing to wait for on the clock
            await asyncio.to_thread(self._move, row, None, None)
            return
        if isinstance(trigger, QueueTrigger):
            await self._queue_check(row, trigger, tz, calendars, now, principal, cache)
            return
        first = row.next_planned_at or row.next_fire_at
        assert first is not None
        slots, following = slots_and_next(trigger, first, now, tz, calendars)
        # A fire is late past its grace counted from its jittered time, the latest the engine meant to act on it.
        plan = misfire_plan(slots, now, row.misfire_policy, row.misfire_grace_seconds + row.jitter_seconds)
        fires: list[NewFire] = []
        if plan.skipped:
            fires.append(
                NewFire(
                    plan.skipped[0],
                    row.target_action,
                    Outcome.SKIPPED_MISFIRE,
                    error=f"{len(plan.skipped)} fire(s) from {plan.skipped[0].isoformat()} to "
                    f"{plan.skipped[-1].isoformat()} fell due more than {row.misfire_grace_seconds:g} s ago",
                    missed=len(plan.skipped) - 1,
                )
            )
        queued_since = row.queued_since
        if plan.fire is not None:
            fire = await self._decide(row, plan.fire, tz, calendars, cache)
            fire.missed = plan.fire_missed
            if fire.outcome == Outcome.QUEUED:
                if queued_since is None:
                    queued_since = plan.fire
                else:
                    fire = dataclasses.replace(fire, outcome=Outcome.SKIPPED_OVERLAP, error="a fire is queued already")
            fires.append(fire)
        if following is None or following > now:
            planned, fire_at = following, with_jitter(following, row.jitter_seconds)
        else:
            planned, fire_at = plan_next(trigger, now, tz, calendars, row.jitter_seconds)
        await self._apply(cache, Pending(row, fires, planned, fire_at, row.window_end, queued_since, principal))

    async def _decide(
        self, row: Schedule, slot: datetime, tz: ZoneInfo, calendars: list[DayCalendar], cache: PassCache
    ) -> NewFire:
        """The fire of `slot`: skipped when a calendar now excludes its day (changed since it was planned), held by
        the overlap policy when its robot runs, else fired."""
        day = slot.astimezone(tz).date()
        excluded = [calendar.name for calendar in calendars if calendar.excludes(day)]
        if excluded:
            return NewFire(
                slot, row.target_action, Outcome.SKIPPED_CALENDAR, error=f"{day} is excluded by {excluded[0]}"
            )
        robot = target_robot(row.target_action, row.target_args)
        overlapping = row.target_action == "robots.start" and robot is not None and row.overlap != "parallel"
        if overlapping and robot is not None:
            if await self._active(robot, cache):
                if row.overlap == "skip":
                    error = f"robot {robot} has an active run"
                    return NewFire(slot, row.target_action, Outcome.SKIPPED_OVERLAP, error=error)
                return NewFire(slot, row.target_action, Outcome.QUEUED, row.target_args)
            assert cache.active is not None
            cache.active.add(robot)  # no await since the check: another fire of this pass sees the start
        return NewFire(slot, row.target_action, Outcome.FIRED, row.target_args)

    # ---- queue backlogs -----------------------------------------------------------------------------------------

    async def _queue_check(
        self,
        row: Schedule,
        trigger: QueueTrigger,
        tz: ZoneInfo,
        calendars: list[DayCalendar],
        now: datetime,
        principal: Principal,
        cache: PassCache,
    ) -> None:
        """A queue trigger's check: with at least `min_items` ready items, start the robot up to `max_runs` active
        runs (never more starts than ready items). The k-th start of one check is recorded k microseconds after
        the check's time (a fire row is unique per planned time). Missed checks are not made up: the next one
        looks at the queue as it is then."""
        robot = str(row.target_args["name"])
        slot = row.next_planned_at or row.next_fire_at or now
        planned, fire_at = plan_next(trigger, now, tz, calendars, row.jitter_seconds)
        try:
            ready = await asyncio.to_thread(self._ready_items, trigger.queue)
        except NotFound:
            await self._mark_broken(row, f"its queue {trigger.queue} no longer exists")
            return
        fires: list[NewFire] = []
        if ready >= trigger.min_items and not any(
            calendar.excludes(slot.astimezone(tz).date()) for calendar in calendars
        ):
            active = await asyncio.to_thread(self._active_runs, robot)
            for copy in range(min(trigger.max_runs - active, ready)):
                fires.append(
                    NewFire(slot + timedelta(microseconds=copy), "robots.start", Outcome.FIRED, {"name": robot})
                )
        await self._apply(cache, Pending(row, fires, planned, fire_at, None, None, principal))

    def _ready_items(self, queue: str) -> int:
        queues = self.app.service("queues")
        assert isinstance(queues, QueuesService)
        return queues.ready_count(system_principal("scheduler"), queue)

    def _active_runs(self, robot: str) -> int:
        page = self.service.robots.list_runs(
            system_principal("scheduler"), robot=robot, state=None, limit=200, cursor=None
        )
        return sum(1 for run in page.items if str(run.state) not in _ENDED)

    # ---- windows ------------------------------------------------------------------------------------------------

    async def _window(
        self,
        row: Schedule,
        trigger: WindowTrigger,
        tz: ZoneInfo,
        calendars: list[DayCalendar],
        now: datetime,
        principal: Principal,
        cache: PassCache,
    ) -> None:
        robot = str(row.target_args["name"])
        span = self.window_now(trigger, now, tz, calendars)
        let_go = row.paused or not row.enabled  # paused or disabled inside its window: the window ends now
        if row.window_end is not None and (now >= row.window_end or let_go):
            # The window is over: its robot's runs are stopped safely. Inside a next window already (serve was
            # down across it, or windows touch), the next pass starts the robot again.
            fires = []
            if await self._active(robot, cache):
                fires.append(NewFire(min(now, row.window_end), "robots.stop", Outcome.FIRED, {"name": robot}))
            planned, fire_at = (now, now) if span is not None else plan_next(trigger, now, tz, calendars, 0.0)
            if let_go:  # what it does once resumed or enabled is planned again then
                planned, fire_at = plan_next(trigger, now, tz, calendars, 0.0)
            await self._apply(cache, Pending(row, fires, planned, fire_at, None, None, principal))
            return
        if span is None:  # due, but no window now (it passed while no engine ran, or its day is excluded)
            planned, fire_at = plan_next(trigger, now, tz, calendars, row.jitter_seconds)
            await self._apply(cache, Pending(row, [], planned, fire_at, None, None, principal))
            return
        start, end = span
        fires = []
        if not await self._active(robot, cache) and not await asyncio.to_thread(
            self._held, robot, start, principal.actor
        ):
            # Entering the window as planned (its start is the fire's time), or keeping it running, resumed inside it
            # or created inside it (now: a start's fire row is unique per planned time).
            planned_at = start if row.next_planned_at == start else now
            fires.append(NewFire(planned_at, "robots.start", Outcome.FIRED, {"name": robot}))
            if cache.active is not None:
                cache.active.add(robot)
        await self._apply(cache, Pending(row, fires, end, end, end, None, principal))

    def _held(self, robot: str, window_start: datetime, actor: str) -> bool:
        """Whether a manual stop holds the robot: it was stopped (stop or kill) by someone else than this schedule
        or its max runtime, and its last run ended inside this window. A manual start since clears the robot's
        manual_stop."""
        robots = self.service.robots
        scheduler = system_principal("scheduler")
        try:
            if not robots.get_robot(scheduler, robot).manual_stop:
                return False
        except NotFound:
            return False
        runs = robots.list_runs(scheduler, robot=robot, state=None, limit=1, cursor=None).items
        if not runs or runs[0].ended_at is None or runs[0].ended_at < window_start:
            return False
        stopped_by = {step.get("by") for step in runs[0].transitions if step.get("state") == "stopping"}
        # Stopped by this schedule (a window's end) or by the robot's own max_runtime: no one held it.
        return not stopped_by & {actor, NOT_MANUAL}

    # ---- run events ---------------------------------------------------------------------------------------------

    async def follow_runs(self) -> None:
        """Every run's end, as the robots service publishes it: fire the run_event schedules it matches, keep
        windows' robots running, release queued fires."""
        with self.app.events.subscribe(RUNS_TOPIC) as queue:
            while True:
                topic, payload = await queue.get()
                if not topic:
                    return  # the hub closed: serve is stopping
                if payload.get("state") not in _ENDED:
                    continue
                try:
                    await self.run_ended(payload)
                except RobofleetError as exc:
                    log.warning("a run's end could not be handled by the schedules: %s", exc.message)
                except Exception:
                    log.exception("a run's end could not be handled by the schedules")

    async def catch_up_run_events(self) -> None:
        """Run ends no engine handled (serve was down, or killed between a run's end and its chain's fire): each
        run_event schedule looks at the newest CATCH_UP_RUNS runs of its robot that ended since it was last
        written, and fires for those without a fire row (unique per schedule and run end: one handled is never
        fired again), under its misfire policy as clock fires are."""
        now = utcnow()
        for row in await asyncio.to_thread(self._read, store_ops.run_event_schedules):
            if not row.enabled or row.paused or row.broken is not None:
                continue
            trigger = parse_trigger(row.trigger, row.timezone)
            assert isinstance(trigger, RunEventTrigger)
            ends = await asyncio.to_thread(self._unhandled_ends, row, trigger)
            if not ends:
                continue
            plan = misfire_plan(ends, now, row.misfire_policy, row.misfire_grace_seconds + row.jitter_seconds)
            if plan.skipped:
                skipped = NewFire(
                    plan.skipped[0],
                    row.target_action,
                    Outcome.SKIPPED_MISFIRE,
                    error=f"{len(plan.skipped)} run end(s) of {trigger.robot} from {plan.skipped[0].isoformat()} "
                    f"were not handled while no engine ran, more than {row.misfire_grace_seconds:g} s ago",
                    missed=len(plan.skipped) - 1,
                )
                await asyncio.to_thread(self._insert, row.name, [skipped])
            if plan.fire is not None:
                log.info("schedule %s: firing for a run end of %s that no engine handled", row.name, trigger.robot)
                await self.fire_event(row, plan.fire, missed=plan.fire_missed)

    def _unhandled_ends(self, row: Schedule, trigger: RunEventTrigger) -> list[datetime]:
        """The end times (oldest first) of the runs of the trigger's robot that match it, ended since the schedule
        was last written, and have no fire of `row`."""
        scheduler = system_principal("scheduler")
        runs = self.service.robots.list_runs(
            scheduler, robot=trigger.robot, state=None, limit=CATCH_UP_RUNS, cursor=None
        )
        since = store_ops.as_aware(row.updated_at)
        ends = sorted(
            run.ended_at
            for run in runs.items
            if run.ended_at is not None and run.ended_at > since and trigger.matches(run.robot, str(run.state))
        )
        with self.store.transaction() as session:
            handled = store_ops.fired_at_times(session, row.name, ends)
        return [end for end in ends if end not in handled]

    async def run_ended(self, run: dict[str, Any]) -> None:
        robot, state = str(run["robot"]), str(run["state"])
        ended = datetime.fromisoformat(run["ended_at"]) if run.get("ended_at") else utcnow()
        rows = await asyncio.to_thread(self._read, lambda session: store_ops.touched_by_run(session, robot))
        wake: float | None = None
        for row in rows:
            if not row.enabled or row.paused or row.broken is not None:
                continue
            kind = (row.trigger or {}).get("kind")
            if kind == "run_event":
                trigger = parse_trigger(row.trigger, row.timezone)
                if isinstance(trigger, RunEventTrigger) and trigger.matches(robot, state):
                    await self.fire_event(row, ended)
            elif target_robot(row.target_action, row.target_args) == robot:
                if kind == "window" and row.window_end is not None and utcnow() < row.window_end:
                    at = utcnow() + timedelta(seconds=WINDOW_RECHECK_SECONDS)
                    await asyncio.to_thread(self._recheck, row, at)
                    wake = min(wake or WINDOW_RECHECK_SECONDS, WINDOW_RECHECK_SECONDS)
                elif row.queued_since is not None:
                    wake = 0.0  # its queued fire may go now
        if wake is not None:
            self.service.timers.set("run-ended", wake, self._wake)

    def _recheck(self, row: Schedule, at: datetime) -> None:
        with self.store.transaction() as session:
            store_ops.recheck_at(session, row.id, row.next_fire_at, at)

    async def fire_event(self, row: Schedule, planned: datetime, *, missed: int = 0) -> None:
        try:
            principal = await self._usable(row)
        except Broken as exc:
            await self._mark_broken(row, str(exc))
            return
        fire = await self._decide(row, planned, ZoneInfo(row.timezone), [], PassCache())
        fire.missed = missed
        if fire.outcome == Outcome.QUEUED:
            fire = dataclasses.replace(fire, outcome=Outcome.SKIPPED_OVERLAP, error="run events are not queued")
        self._prepare(principal, [fire])
        if await asyncio.to_thread(self._insert, row.name, [fire]):
            self._adopt(row, [fire])

    async def fire_manual(self, principal: Principal, row: Schedule) -> FireOut:
        """A fire asked through the API: now, as the caller (a target the caller may not submit is refused, and
        nothing is written)."""
        fire = NewFire(utcnow(), row.target_action, Outcome.FIRED, row.target_args)
        self._prepare(principal, [fire], refuse=True)
        await asyncio.to_thread(self._insert, row.name, [fire])
        self._adopt(row, [fire])
        assert fire.id is not None
        return await asyncio.to_thread(
            self._read, lambda session: store_ops.fire_out(session.get(ScheduleFire, fire.id))
        )

    async def fire_queued(self) -> None:
        """Queued fires whose robot has no active run any more: fired now, once."""
        rows = await asyncio.to_thread(self._read, store_ops.queued)
        for row in rows:
            robot = target_robot(row.target_action, row.target_args)
            if robot is None or await self._active(robot, PassCache()) or row.queued_since is None:
                continue
            try:
                principal = await self._usable(row)
            except Broken as exc:
                await self._mark_broken(row, str(exc))
                continue
            fire = NewFire(row.queued_since, row.target_action, Outcome.FIRED, row.target_args)
            self._prepare(principal, [fire])
            if await asyncio.to_thread(self._take_queued, row, fire):
                self._adopt(row, [fire])

    def _take_queued(self, row: Schedule, fire: NewFire) -> bool:
        """The queued fire (its row, stored when it was queued) becomes `fire`, with its activity, in one
        transaction fenced by the schedule's queued time."""
        with self.store.transaction() as session:
            if not store_ops.take_queued(session, row.id, fire.planned_at):
                return False
            stored = store_ops.queued_fire(session, row.name, fire.planned_at)
            if stored is None:
                return False
            stored.outcome, stored.error = fire.outcome, fire.error
            session.flush()
            fire.id, fire.fired_at = stored.id, stored.fired_at
            self._activities(session, [fire])
            return True

    # ---- broken targets -----------------------------------------------------------------------------------------

    async def _usable(self, row: Schedule, cache: PassCache | None = None) -> Principal:
        """Who the schedule acts as; Broken when its action, robot or owner is gone."""
        cache = cache or PassCache()
        if row.target_action not in self.service.registry:
            raise Broken(f"its action {row.target_action} no longer exists")
        async with cache.lock:
            if cache.robots is None:
                cache.robots = await asyncio.to_thread(self._robot_names)
        for robot in (target_robot(row.target_action, row.target_args), (row.trigger or {}).get("robot")):
            if robot is not None and robot not in cache.robots:
                raise Broken(f"its robot {robot} no longer exists")
        if row.owner_via in ("system", "cli"):
            return system_principal(schedule_actor(row.name))
        key = (row.owner, row.owner_via, tuple(row.owner_scopes or ()))
        async with cache.lock:  # the pass's fires run together: one lookup of an owner, not one each
            if key not in cache.owners:
                try:
                    cache.owners[key] = await asyncio.to_thread(self.acting_principal, row)
                except Broken as exc:
                    cache.owners[key] = exc
        found = cache.owners[key]
        if isinstance(found, Broken):
            raise found
        return dataclasses.replace(found, username=schedule_actor(row.name))

    def acting_principal(self, row: Schedule) -> Principal:
        """`schedule:<name>` with its owner's rights now (see the module's docstring); Broken when the owner is
        disabled or deleted."""
        name = schedule_actor(row.name)
        if row.owner_via in ("system", "cli"):
            return system_principal(name)
        with self.store.transaction() as session:
            try:
                user = find_user(session, row.owner)
            except NotFound:
                raise Broken(f"its owner {row.owner} no longer exists") from None
            if user.disabled:
                raise Broken(f"its owner {row.owner} is disabled")
            owner = principal_for_user(user, scopes=row.owner_scopes, via="schedule")
        return dataclasses.replace(owner, username=name)

    async def sweep_broken(self) -> None:
        """Mark broken every schedule whose action, robot or owner is gone, so the API shows it before its next
        fire. Each action, robot and owner named by a schedule is checked once; schedules are read only when one
        is gone (an idle engine with 10,000 schedules reads a few distinct names every sweep, not every row)."""
        keys = await asyncio.to_thread(self._read, store_ops.sweep_keys)
        robots = await asyncio.to_thread(self._robot_names) if keys.robots else set()
        actions = {
            action: f"its action {action} no longer exists"
            for action in keys.actions
            if action not in self.service.registry
        }
        gone_robots = {robot: f"its robot {robot} no longer exists" for robot in keys.robots - robots}
        owners = {owner: await asyncio.to_thread(self._owner_reason, owner) for owner in sorted(keys.owners)}
        gone_owners = {owner: reason for owner, reason in owners.items() if reason is not None}
        if not (actions or gone_robots or gone_owners):
            return
        rows = await asyncio.to_thread(
            self._read,
            lambda session: store_ops.sweep_suspects(session, set(actions), set(gone_robots), set(gone_owners)),
        )
        for row in rows:
            reasons = [
                actions.get(row.target_action),
                *(gone_robots.get(robot) for robot in (row.target_robot, row.event_robot) if robot is not None),
                gone_owners.get(row.owner) if row.owner_via not in ("system", "cli") else None,
            ]
            reason = next((found for found in reasons if found is not None), None)
            if reason is not None:
                await self._mark_broken(row, reason)

    def _robot_names(self) -> set[str]:
        robots, cursor = self.service.robots, None
        names: set[str] = set()
        while True:
            page = robots.list_robots(system_principal("scheduler"), limit=500, cursor=cursor)
            names.update(robot.name for robot in page.items)
            if page.next_cursor is None:
                return names
            cursor = page.next_cursor

    def _owner_reason(self, owner: str) -> str | None:
        """Why schedules owned by `owner` can no longer act as that user (gone, disabled); None if they can."""
        with self.store.transaction() as session:
            try:
                user = find_user(session, owner)
            except NotFound:
                return f"its owner {owner} no longer exists"
            return f"its owner {owner} is disabled" if user.disabled else None

    async def _mark_broken(self, row: Schedule, reason: str) -> None:
        log.warning("schedule %s is broken: %s", row.name, reason)

        def write() -> None:
            with self.store.transaction() as session:
                store_ops.mark_broken(session, row.id, reason)

        await asyncio.to_thread(write)
        self.announce_change([robot for robot in (row.target_robot, row.event_robot) if robot])

    def announce_change(self, robots: list[str]) -> None:
        """Tell the panel's live list that a schedule changed (on the event loop)."""
        if self.app.events.has_subscribers(TOPIC):
            self.app.events.publish(TOPIC, {"change": True, "robots": robots})

    # ---- writes -------------------------------------------------------------------------------------------------

    async def _apply(self, cache: PassCache, pending: Pending) -> None:
        """Write the fence and fire rows, then submit the fires: now, or with its chunk when the pass batches."""
        if cache.batching:
            cache.pending.append(pending)
        else:
            await self._flush([pending])

    async def _flush(
        self, pending: list[Pending], *, not_before: datetime | None = None, adopt: bool = True
    ) -> list[Pending]:
        """The chunk's fences, fire rows and activities in one transaction (not before `not_before`, the time the
        pass acts as of); then, with `adopt`, the activities are queued. The ones committed (the others another
        engine moved first)."""
        if not pending:
            return []
        if not_before is not None and (early := (not_before - utcnow()).total_seconds()) > 0:
            await asyncio.sleep(early)
        for item in pending:
            self._prepare(item.principal, item.fires)
        committed = await asyncio.to_thread(self._commit_many, pending)
        if adopt:
            for item in committed:
                self._adopt(item.row, item.fires)
        return committed

    def _commit_many(self, pending: list[Pending]) -> list[Pending]:
        """Every fence, and the fire rows and activities of those that moved, in one transaction; the ones another
        engine moved first are left out, the others returned. A fire row another engine wrote first keeps no id:
        not fired."""
        with self.store.transaction() as session:
            moved = _write(session, pending)
            self._activities(session, [fire for item in moved for fire in item.fires])
            return moved

    def _commit(
        self,
        row: Schedule,
        fires: list[NewFire],
        planned: datetime | None,
        fire_at: datetime | None,
        window_end: datetime | None,
        queued_since: datetime | None,
    ) -> bool:
        """The fence and the fire rows (none fired) in one transaction; False (nothing written) when another
        engine moved the schedule first."""
        with self.store.transaction() as session:
            return bool(_write(session, [Pending(row, fires, planned, fire_at, window_end, queued_since, None)]))

    def _move(self, row: Schedule, planned: datetime | None, fire_at: datetime | None) -> bool:
        return self._commit(row, [], planned, fire_at, row.window_end, row.queued_since)

    def _insert(self, schedule: str, fires: list[NewFire]) -> bool:
        """The fire rows and their activities, in one transaction; False when another engine wrote one of the
        rows first."""
        with self.store.transaction() as session:
            written = _add(session, [(schedule, fire) for fire in fires])
            self._activities(session, written)
            return len(written) == len(fires)

    def _prepare(self, principal: Principal | None, fires: list[NewFire], *, refuse: bool = False) -> None:
        """Check each fire's activity as the processor will run it (the action's permission, its args): one that
        cannot be submitted is recorded as failed with the reason instead (`refuse`: raised)."""
        processor = self.app.processor
        for fire in fires:
            if fire.outcome != Outcome.FIRED or principal is None:
                continue
            try:
                if processor is None:  # a run event in the moment serve starts, before the processor runs
                    raise StoreUnavailable("activities are not running yet")
                fire.prepared = processor.prepare(
                    principal, ActivityIn(action=fire.action, args=fire.args, mode="async")
                )
            except RobofleetError as exc:
                if refuse:
                    raise
                log.warning("schedule fire: could not submit %s: %s", fire.action, exc.message)
                fire.outcome, fire.error = Outcome.FAILED, exc.message

    def _activities(self, session: Any, fires: list[NewFire]) -> None:
        """The activities of the written fires, in the fire's transaction: a fire is recorded with its activity,
        or not at all (nothing to resubmit after a crash, nothing submitted twice)."""
        firing = [fire for fire in fires if fire.id is not None and fire.prepared is not None]
        if not firing:
            return
        processor = self.app.processor
        assert processor is not None
        outs = processor.insert_prepared(session, [fire.prepared for fire in firing if fire.prepared], utcnow())
        for fire, out in zip(firing, outs, strict=True):
            fire.activity = out
        store_ops.set_fire_results(
            session, [(fire.id, out.id, Outcome.FIRED, None) for fire, out in zip(firing, outs, strict=True) if fire.id]
        )

    def _adopt(self, row: Schedule, fires: list[NewFire]) -> None:
        """After the commit: queue the fires' activities, and tell the panel of every fire written."""
        processor = self.app.processor
        written = [fire for fire in fires if fire.id is not None]
        adopted = [(fire.prepared, fire.activity) for fire in written if fire.prepared and fire.activity]
        if adopted and processor is not None:
            processor.adopt(adopted)
        if written and self.app.events.has_subscribers(TOPIC):
            # The robots it acts on go with it, for the stream to show it only to those who may see them.
            robots = [robot for robot in (row.target_robot, row.event_robot) if robot]
            for fire in written:
                self.app.events.publish(TOPIC, {**fire_event(row.name, fire), "robots": robots})

    async def _active(self, robot: str, cache: PassCache) -> bool:
        """Whether the robot has a run in an active state (the robots service asked once per pass, state by
        state, for every robot's)."""
        async with cache.lock:
            if cache.active is None:
                cache.active = await asyncio.to_thread(self._active_robots)
        return robot in cache.active

    def _active_robots(self) -> set[str]:
        robots = self.service.robots
        names: set[str] = set()
        scheduler = system_principal("scheduler")
        for state in ACTIVE:
            cursor = None
            while True:
                page = robots.list_runs(scheduler, robot=None, state=state, limit=500, cursor=cursor)
                names.update(run.robot for run in page.items)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
        return names


def _write(session: Any, pending: list[Pending]) -> list[Pending]:
    """The fences of `pending`, then the fire rows of those that moved (see Engine._commit_many)."""
    moves = [
        store_ops.Move(
            item.row.id, item.row.next_fire_at, item.fire_at, item.planned, item.window_end, item.queued_since
        )
        for item in pending
    ]
    moved_ids = store_ops.move_many(session, moves)
    moved = [item for item in pending if item.row.id in moved_ids]
    _add(session, [(item.row.name, fire) for item in moved for fire in item.fires])
    return moved


def _add(session: Any, fires: list[tuple[str, NewFire]]) -> list[NewFire]:
    """Insert the fires of (schedule, fire); those written, with their ids (another engine wrote the others)."""
    now = utcnow()
    rows = [
        {
            "schedule": schedule,
            "planned_at": fire.planned_at,
            "fired_at": now,
            "action": fire.action,
            "outcome": str(fire.outcome),
            "error": fire.error,
            "missed": fire.missed,
        }
        for schedule, fire in fires
    ]
    ids = store_ops.insert_fires(session, rows)
    for schedule, fire in fires:
        fire.id, fire.fired_at = ids.get((schedule, fire.planned_at)), now
    return [fire for _, fire in fires if fire.id is not None]


def fire_event(schedule: str, fire: NewFire) -> dict[str, Any]:
    """What the `schedules` topic says of a written fire: its FireOut."""
    assert fire.id is not None and fire.fired_at is not None
    return FireOut(
        id=fire.id,
        schedule=schedule,
        planned_at=fire.planned_at,
        fired_at=fire.fired_at,
        action=fire.action,
        activity_id=fire.activity.id if fire.activity else None,
        outcome=fire.outcome,
        error=fire.error,
        missed=fire.missed,
    ).model_dump(mode="json")


def _with_calendars(session: Any, rows: list[Schedule]) -> list[tuple[Schedule, list[DayCalendar]]]:
    """Each row with its calendars, every calendar of the pass read once."""
    found = store_ops.calendars_named(session, sorted({name for row in rows for name in row.calendars or []}))
    days = {name: store_ops.day_calendar(calendar) for name, calendar in found.items()}
    return [(row, [days[name] for name in row.calendars or [] if name in days]) for row in rows]


def plan_next(
    trigger: Trigger, after: datetime, tz: ZoneInfo, calendars: list[DayCalendar], jitter_seconds: float
) -> tuple[datetime | None, datetime | None]:
    """(planned, fire_at): the next fire after `after` the calendars allow, and when the engine acts on it (the
    planned time plus a random jitter up to `jitter_seconds`); (None, None) when it never fires again."""
    planned = next_allowed(trigger, after, tz, calendars)
    return planned, with_jitter(planned, jitter_seconds)


def with_jitter(planned: datetime | None, jitter_seconds: float) -> datetime | None:
    """When the engine acts on a fire planned at `planned`: plus a random jitter up to `jitter_seconds`."""
    if planned is None:
        return None
    jitter = random.uniform(0, jitter_seconds) if jitter_seconds > 0 else 0.0
    return planned + timedelta(seconds=jitter)
