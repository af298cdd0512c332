"""Schedules pages: the list (next fire, last outcome and its lateness, Fire now, Pause/Resume, refreshed while
open), a form that builds the trigger (the cron it made and the next fires shown as it changes), a page per
schedule with its fires, a week timeline per robot (server-rendered SVG) and the calendars. Every change goes
through SchedulesService, which checks the permission, validates everything before it saves and audits."""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from robofleet.auth.principal import Principal
from robofleet.errors import Conflict, RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.robots.schemas import RunOut
from robofleet.schedules.api import Schedules
from robofleet.schedules.calendars import preview
from robofleet.schedules.checks import target_robot
from robofleet.schedules.models import Outcome
from robofleet.schedules.panel_forms import (
    CRON_MODES,
    DAY_TITLES,
    KIND_TITLES,
    FormInvalid,
    ScheduleForm,
    blank_form,
    build_cron,
    calendar_dates,
    calendar_holidays,
    cron_in_words,
    day_calendar,
    describe_trigger,
    field_errors,
    form_of,
    parse_create,
    schedule_data,
    submitted,
    trigger_of,
)
from robofleet.schedules.schemas import CalendarCreate, Planned, ScheduleOut, ScheduleUpdate
from robofleet.schedules.service import SchedulesService
from robofleet.schedules.triggers import DAYS, RUN_EVENTS, Trigger, TriggerError, WindowTrigger, parse_trigger
from robofleet.store.base import utcnow
from robofleet.web.context import get_context
from robofleet.web.deps import robots_of
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect

router = APIRouter(prefix="/panel/schedules", include_in_schema=False)
HOME = "/panel/schedules"
PREVIEW_COUNT = 8
OUTCOME_BADGES = {
    Outcome.FIRED: "ok",
    Outcome.QUEUED: "warn",
    Outcome.SKIPPED_OVERLAP: "warn",
    Outcome.SKIPPED_MISFIRE: "warn",
    Outcome.SKIPPED_CALENDAR: "",
    Outcome.FAILED: "bad",
}
READ = Depends(Require("schedules:read", panel=True))
WRITE = Depends(Require("schedules:write", panel=True))


@functools.cache
def timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def lateness(schedule: ScheduleOut) -> str:
    if schedule.last_fire is None:
        return ""
    return f"{schedule.last_fire.lateness_seconds:+.3f} s"


@dataclass(frozen=True)
class Listed:
    """A schedule as the list shows it: its trigger in words, its robot (robots.* targets) and last lateness."""

    s: ScheduleOut
    words: str
    robot: str | None
    lateness: str


def _listing(service: SchedulesService, principal: Principal) -> list[Listed]:
    """Every schedule the caller sees (the first 500), as the list shows them."""
    return [
        Listed(
            schedule,
            describe_trigger(schedule.trigger),
            target_robot(schedule.target.action, schedule.target.args),
            lateness(schedule),
        )
        for schedule in service.list_schedules(principal, limit=500, cursor=None).items
    ]


def _choices(ctx: Orchestrator, service: SchedulesService, principal: Principal) -> dict[str, Any]:
    """What the form offers: the actions the caller may run (none with secret args), robots, calendars, zones."""
    actions = [
        action.name for action in ctx.registry.search() if principal.can(action.permission) and not action.has_secrets
    ]
    robots = [robot.name for robot in robots_of(ctx).list_robots(principal, limit=500, cursor=None).items]
    calendars = [calendar.name for calendar in service.list_calendars(principal, limit=500, cursor=None).items]
    return {
        "actions": actions,
        "robots": robots,
        "calendar_names": calendars,
        "timezones": timezones(),
        "kinds": KIND_TITLES,
        "cron_modes": CRON_MODES,
        "days": list(zip(DAYS, DAY_TITLES, strict=True)),
        "run_events": RUN_EVENTS,
    }


def _list_page(
    request: Request,
    ctx: Orchestrator,
    service: SchedulesService,
    principal: Principal,
    form: ScheduleForm,
    status: int = 200,
) -> Response:
    response = page(
        request,
        "schedules.html",
        principal,
        status=status,
        section="schedules",
        tab="list",
        rows=_listing(service, principal),
        form=form,
        write=principal.can("schedules:write"),
        badges=OUTCOME_BADGES,
        **_choices(ctx, service, principal),
    )
    if form.open:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("")
def schedules_page(
    request: Request, schedules: Schedules, principal: Principal = READ, ctx: Orchestrator = Depends(get_context)
) -> Response:
    return _list_page(request, ctx, schedules, principal, blank_form())


@router.get("/rows")
def schedule_rows(request: Request, schedules: Schedules, principal: Principal = READ) -> Response:
    """The table's rows alone: what the list page polls while it is open (the domain publishes no fire event)."""
    return page(
        request,
        "schedule_rows.html",
        principal,
        rows=_listing(schedules, principal),
        write=principal.can("schedules:write"),
        badges=OUTCOME_BADGES,
    )


@router.post("")
async def schedule_create(
    request: Request, schedules: Schedules, principal: Principal = WRITE, ctx: Orchestrator = Depends(get_context)
) -> Response:
    values = submitted(await request.form())

    def create() -> Response:
        form = ScheduleForm(values)
        try:
            created = schedules.create_schedule(principal, parse_create(values))
        except FormInvalid as exc:
            form.errors = exc.errors
            return _list_page(request, ctx, schedules, principal, form, status=422)
        except RobofleetError as exc:
            _show(form, exc)
            return _list_page(request, ctx, schedules, principal, form, status=exc.status)
        return redirect(f"{HOME}/{created.name}", notice=f"Schedule {created.name} created.")

    return await run_in_threadpool(create)


def _show(form: ScheduleForm, exc: RobofleetError) -> None:
    details = exc.details if isinstance(exc.details, dict) else {}
    if isinstance(exc, Conflict) and details.get("schedule"):
        form.errors = {"name": exc.message}
        return
    field_name = details.get("field")
    form.shown_at(field_name, str(details.get("reason") or exc.message))


@router.post("/preview")
async def form_preview(request: Request, schedules: Schedules, principal: Principal = READ) -> Response:
    """The form's trigger as the engine reads it: the cron the builder made, and the next fires after the chosen
    calendars. Answers a fragment for htmx; nothing is saved."""
    values = submitted(await request.form())

    def compute() -> Response:
        errors: dict[str, str] = {}
        spec = trigger_of(values, errors)
        cron = build_cron(values, {}) if values.get("kind") == "cron" else None
        fires: list[tuple[str, str]] = []
        problem = next(iter(errors.values()), None)
        tz_name = values.get("timezone", "").strip()
        if problem is None:
            try:
                trigger = parse_trigger(spec, tz_name)
                calendars = [
                    day_calendar(found)
                    for name in values.get("calendars", [])
                    for found in [schedules.get_calendar(principal, name)]
                ]
                tz = ZoneInfo(tz_name)
                starts = preview(trigger, utcnow(), tz, calendars, PREVIEW_COUNT)
                fires = [(_local(at, tz_name), _local(_window_end(trigger, at), tz_name)) for at in starts]
            except TriggerError as exc:
                problem = exc.message
            except RobofleetError as exc:
                problem = exc.message
        return page(
            request,
            "schedule_preview.html",
            principal,
            cron=cron,
            cron_words=cron_in_words(cron) if cron else None,
            spec=spec,
            fires=fires,
            problem=problem,
            tz=tz_name,
        )

    return await run_in_threadpool(compute)


def _window_end(trigger: Trigger, start: datetime) -> datetime | None:
    if isinstance(trigger, WindowTrigger):
        bounds = trigger.window_at(start)
        return bounds[1] if bounds else None
    return None


def _local(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "—"
    try:
        zone = ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%a %Y-%m-%d %H:%M:%S %Z")


# ---- timeline ---------------------------------------------------------------------------------------------------

TIMELINE_WIDTH = 1000
LABEL_WIDTH = 150
ROW_HEIGHT = 34
TIMELINE_SPAN = timedelta(days=7)  # shown before and after now
MAX_RUN_PAGES = 10
RUN_COLOURS = {
    "succeeded": "#1a7f37",
    "failed": "#cf222e",
    "killed": "#cf222e",
    "lost": "#9a6700",
    "stopped": "#8c959f",
}


@dataclass
class Shape:
    """A bar (width > 0) or a tick on a robot's row, in SVG units, with its hover title."""

    x: float
    title: str
    width: float = 0.0
    state: str = ""  # a run's state, for its colour

    @property
    def colour(self) -> str:
        return RUN_COLOURS.get(self.state, "#1f6feb")


@dataclass
class TimelineRow:
    robot: str
    windows: list[Shape] = field(default_factory=list)
    ticks: list[Shape] = field(default_factory=list)
    runs: list[Shape] = field(default_factory=list)


@dataclass
class Timeline:
    rows: list[TimelineRow]
    days: list[Shape]  # midnights (UTC), titled "Mon 07"
    now_x: float
    truncated: bool


def draw_timeline(
    now: datetime, robots: list[str], schedules: list[ScheduleOut], planned: Planned, runs: list[RunOut]
) -> Timeline:
    """One row per robot from `now` - 7 days to `now` + 7 days: its runs coloured by outcome, its schedules'
    planned fires as ticks (those closer than a unit share one, titled with their count) and windows as bars."""
    start, end = now - TIMELINE_SPAN, now + TIMELINE_SPAN
    scale = (TIMELINE_WIDTH - LABEL_WIDTH) / (end - start).total_seconds()

    def x(moment: datetime) -> float:
        return round(LABEL_WIDTH + (min(max(moment, start), end) - start).total_seconds() * scale, 1)

    rows = {robot: TimelineRow(robot) for robot in robots}
    by_name = {item.name: item for item in schedules}
    ticks: dict[tuple[str, float], list[str]] = {}
    for fire in planned.fires:
        schedule = by_name.get(fire.schedule)
        robot = target_robot(schedule.target.action, schedule.target.args) if schedule else None
        if schedule is None or robot not in rows:
            continue
        zone = schedule.timezone
        if schedule.trigger.get("kind") == "window":
            finish = _window_end(parse_trigger(schedule.trigger, zone), fire.at) or fire.at
            title = f"{fire.schedule}: window {_local(fire.at, zone)} to {_local(finish, zone)}"
            rows[robot].windows.append(Shape(x(fire.at), title, max(x(finish) - x(fire.at), 1.5)))
        else:
            ticks.setdefault((robot, x(fire.at)), []).append(
                f"{fire.schedule} ({fire.action}) at {_local(fire.at, zone)}"
            )
    for (robot, at), titles in ticks.items():
        more = f" and {len(titles) - 1} more" if len(titles) > 1 else ""
        rows[robot].ticks.append(Shape(at, titles[0] + more))
    for run in runs:
        began, finish = run.started_at or run.created_at, run.ended_at or now
        if run.robot in rows and finish >= start:
            until = _local(run.ended_at, "UTC") if run.ended_at else "now"
            title = f"run {run.id}: {run.state}, {_local(began, 'UTC')} to {until}"
            rows[run.robot].runs.append(Shape(x(began), title, max(x(finish) - x(began), 2.0), str(run.state)))
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    days = [midnight + timedelta(days=offset) for offset in range(1, 16)]
    return Timeline(
        rows=list(rows.values()),
        days=[Shape(x(day), day.strftime("%a %d")) for day in days if day < end],
        now_x=x(now),
        truncated=planned.truncated,
    )


def _recent_runs(ctx: Orchestrator, principal: Principal, since: datetime) -> list[RunOut]:
    """The runs created since `since`, newest first, a few pages at most."""
    found: list[RunOut] = []
    cursor: str | None = None
    for _ in range(MAX_RUN_PAGES):
        page_of = robots_of(ctx).list_runs(principal, robot=None, state=None, limit=500, cursor=cursor)
        found += page_of.items
        cursor = page_of.next_cursor
        if cursor is None or not page_of.items or page_of.items[-1].created_at < since:
            break
    return found


@router.get("/timeline")
def timeline_page(
    request: Request, schedules: Schedules, principal: Principal = READ, ctx: Orchestrator = Depends(get_context)
) -> Response:
    now = utcnow()
    robots = [robot.name for robot in robots_of(ctx).list_robots(principal, limit=500, cursor=None).items]
    timeline = draw_timeline(
        now,
        robots,
        schedules.list_schedules(principal, limit=500, cursor=None).items,
        schedules.planned(principal, now, now + TIMELINE_SPAN),
        _recent_runs(ctx, principal, now - TIMELINE_SPAN),
    )
    return page(
        request,
        "schedule_timeline.html",
        principal,
        section="schedules",
        tab="timeline",
        timeline=timeline,
        width=TIMELINE_WIDTH,
        label_width=LABEL_WIDTH,
        row_height=ROW_HEIGHT,
        height=24 + ROW_HEIGHT * max(len(timeline.rows), 1),
        colours=RUN_COLOURS,
    )


# ---- calendars --------------------------------------------------------------------------------------------------


def _calendars_page(
    request: Request,
    service: SchedulesService,
    principal: Principal,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return page(
        request,
        "schedule_calendars.html",
        principal,
        status=status,
        section="schedules",
        tab="calendars",
        calendars=service.list_calendars(principal, limit=500, cursor=None).items,
        values=values or {"name": "", "dates": "", "holidays": "", "description": ""},
        errors=errors or {},
        write=principal.can("schedules:write"),
    )


@router.get("/calendars")
def calendars_page(request: Request, schedules: Schedules, principal: Principal = READ) -> Response:
    return _calendars_page(request, schedules, principal)


@router.post("/calendars")
async def calendar_create(request: Request, schedules: Schedules, principal: Principal = WRITE) -> Response:
    form = await request.form()
    values = {key: str(form.get(key) or "") for key in ("name", "dates", "holidays", "description")}

    def create() -> Response:
        dates, problem = calendar_dates(values["dates"])
        if problem:
            return _calendars_page(request, schedules, principal, values, {"dates": problem}, status=422)
        try:
            data = CalendarCreate(
                name=values["name"].strip(),
                dates=dates,
                holidays=calendar_holidays(values["holidays"]),
                description=values["description"].strip(),
            )
            schedules.create_calendar(principal, data)
        except RobofleetError as exc:
            where = str((exc.details or {}).get("field") or "name") if isinstance(exc.details, dict) else "name"
            key = "holidays" if where.startswith("holidays") else "name"
            return _calendars_page(request, schedules, principal, values, {key: exc.message}, status=exc.status)
        except ValidationError as exc:  # the name's shape, a country code's length
            errors = {
                "holidays" if str(error["loc"][0]) == "holidays" else "name": error["msg"] for error in exc.errors()
            }
            return _calendars_page(request, schedules, principal, values, errors, status=422)
        return redirect(f"{HOME}/calendars", notice=f"Calendar {data.name} created.")

    return await run_in_threadpool(create)


@router.post("/calendars/{name}/delete")
async def calendar_delete(name: str, schedules: Schedules, principal: Principal = WRITE) -> Response:
    try:
        await run_in_threadpool(schedules.delete_calendar, principal, name)
    except RobofleetError as exc:
        return redirect(f"{HOME}/calendars", error=exc.message)
    return redirect(f"{HOME}/calendars", notice=f"Calendar {name} deleted.")


# ---- one schedule -----------------------------------------------------------------------------------------------


def _schedule_page(
    request: Request,
    ctx: Orchestrator,
    service: SchedulesService,
    principal: Principal,
    name: str,
    form: ScheduleForm | None,
    cursor: str | None = None,
    status: int = 200,
) -> Response:
    schedule = service.get_schedule(principal, name)
    fires = service.fires(principal, name, since=None, until=None, outcome=None, limit=25, cursor=cursor)
    upcoming: list[datetime] = []
    if schedule.broken is None and not schedule.paused and schedule.trigger.get("kind") != "run_event":
        upcoming = service.preview(principal, name, PREVIEW_COUNT)
    response = page(
        request,
        "schedule.html",
        principal,
        status=status,
        section="schedules",
        schedule=schedule,
        words=describe_trigger(schedule.trigger),
        robot=target_robot(schedule.target.action, schedule.target.args),
        upcoming=[_local(at, schedule.timezone) for at in upcoming],
        fires=fires.items,
        next_cursor=fires.next_cursor,
        local=_local,
        form=form or form_of(schedule),
        write=principal.can("schedules:write"),
        badges=OUTCOME_BADGES,
        **_choices(ctx, service, principal),
    )
    if form is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/{name}")
def schedule_page(
    name: str,
    request: Request,
    schedules: Schedules,
    principal: Principal = READ,
    ctx: Orchestrator = Depends(get_context),
    cursor: str | None = Query(None, max_length=200),
) -> Response:
    return _schedule_page(request, ctx, schedules, principal, name, None, cursor)


@router.post("/{name}")
async def schedule_update(
    name: str,
    request: Request,
    schedules: Schedules,
    principal: Principal = WRITE,
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    values = {**submitted(await request.form()), "name": name}

    def update() -> Response:
        form = ScheduleForm(values)
        try:
            schedules.update_schedule(principal, name, ScheduleUpdate.model_validate(schedule_data(values)))
        except FormInvalid as exc:
            form.errors = exc.errors
            return _schedule_page(request, ctx, schedules, principal, name, form, status=422)
        except RobofleetError as exc:
            _show(form, exc)
            return _schedule_page(request, ctx, schedules, principal, name, form, status=exc.status)
        except ValidationError as exc:  # a number out of range, a policy not offered
            form.errors = field_errors(exc)
            return _schedule_page(request, ctx, schedules, principal, name, form, status=422)
        return redirect(f"{HOME}/{name}", notice=f"Schedule {name} saved.")

    return await run_in_threadpool(update)


@router.post("/{name}/{action}")
async def schedule_action(
    name: str, action: str, request: Request, schedules: Schedules, principal: Principal = WRITE
) -> Response:
    """Fire now, pause, resume or delete; back to the page the button was on."""
    back = HOME if request.headers.get("referer", "").rstrip("/").endswith(HOME) else f"{HOME}/{name}"
    try:
        if action == "fire":
            fire = await schedules.fire_now(principal, name)
            suffix = f": {fire.error}" if fire.error else ""
            return redirect(back, notice=f"Fired {name}: {fire.outcome}{suffix}.")
        if action in ("pause", "resume"):
            await run_in_threadpool(schedules.set_paused, principal, name, action == "pause")
            return redirect(back, notice=f"Schedule {name} {'paused' if action == 'pause' else 'resumed'}.")
        if action == "delete":
            await run_in_threadpool(schedules.delete_schedule, principal, name)
            return redirect(HOME, notice=f"Schedule {name} deleted.")
    except RobofleetError as exc:
        return redirect(back, error=exc.message)
    return redirect(back, error=f"Unknown action {action!r}.")
