"""HTTP routes of schedules (/api/v1/schedules) and calendars (/api/v1/calendars)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from robofleet.auth.principal import Principal
from robofleet.schedules.engine import TOPIC
from robofleet.schedules.models import Outcome
from robofleet.schedules.schemas import (
    CalendarCreate,
    CalendarOut,
    CalendarUpdate,
    FireOut,
    Planned,
    Preview,
    ScheduleCreate,
    ScheduleOut,
    ScheduleUpdate,
    TriggerPreview,
)
from robofleet.schedules.service import MAX_PREVIEW, SchedulesService
from robofleet.web.deps import Context
from robofleet.web.paging import Paging, page_in_thread
from robofleet.web.schemas import PageOut
from robofleet.web.security import Require
from robofleet.web.sse import sse_message, sse_response, sse_stream

router = APIRouter(prefix="/api/v1", tags=["schedules"])


async def schedules_service(ctx: Context) -> SchedulesService:
    found = ctx.service("schedules")
    assert isinstance(found, SchedulesService)
    return found


Schedules = Annotated[SchedulesService, Depends(schedules_service)]
Read = Depends(Require("schedules:read"))
Write = Depends(Require("schedules:write"))


@router.get("/schedules")
def list_schedules(schedules: Schedules, paging: Paging, principal: Principal = Read) -> PageOut[ScheduleOut]:
    return PageOut.of(schedules.list_schedules(principal, **paging))


@router.post("/schedules", status_code=201)
def create_schedule(data: ScheduleCreate, schedules: Schedules, principal: Principal = Write) -> ScheduleOut:
    """Create a schedule; the caller must be allowed to submit its target itself."""
    return schedules.create_schedule(principal, data)


@router.get("/schedules/calendar")
def planned_fires(
    schedules: Schedules,
    principal: Principal = Read,
    start: datetime = Query(alias="from", description="Range start, with a UTC offset"),
    end: datetime = Query(alias="to", description="Range end (at most 31 days after from)"),
) -> Planned:
    """Every planned fire of the active schedules in [from, to)."""
    return schedules.planned(principal, start, end)


@router.post("/schedules/preview")
def preview_trigger(data: TriggerPreview, schedules: Schedules, principal: Principal = Read) -> Preview:
    """The next fires of a trigger before it is saved, after calendars (422 naming the field of a bad one)."""
    return Preview(fires=schedules.preview_trigger(principal, data.trigger, data.timezone, data.calendars, data.count))


@router.get("/schedules-stream")
async def schedules_stream(
    request: Request, schedules: Schedules, ctx: Context, principal: Principal = Read
) -> StreamingResponse:
    """Server-sent events: one `fire` event (a fire's record) per fire written of a schedule the caller may see, and
    `changed` (no data) when a schedule was changed or found broken."""
    visible = await run_in_threadpool(schedules.robots.visible_robots, principal)

    def render(payload: dict[str, Any]) -> str | None:
        robots = payload.get("robots") or []
        if visible is not None and any(robot not in visible for robot in robots):
            return None
        if payload.get("change"):
            return sse_message("changed", {})
        fire = {key: value for key, value in payload.items() if key != "robots"}
        return sse_message("fire", fire, event_id=str(fire["id"]))

    return sse_response(sse_stream(ctx.events, TOPIC, render, request.is_disconnected), request, "schedules:read")


@router.get("/schedules/{name}")
def get_schedule(name: str, schedules: Schedules, principal: Principal = Read) -> ScheduleOut:
    return schedules.get_schedule(principal, name)


@router.patch("/schedules/{name}")
def update_schedule(name: str, data: ScheduleUpdate, schedules: Schedules, principal: Principal = Write) -> ScheduleOut:
    return schedules.update_schedule(principal, name, data)


@router.delete("/schedules/{name}", status_code=204)
def delete_schedule(name: str, schedules: Schedules, principal: Principal = Write) -> Response:
    schedules.delete_schedule(principal, name)
    return Response(status_code=204)


@router.get("/schedules/{name}/preview")
def preview(
    name: str, schedules: Schedules, principal: Principal = Read, count: int = Query(20, ge=1, le=MAX_PREVIEW)
) -> Preview:
    """The next fires after calendars and windows."""
    return Preview(fires=schedules.preview(principal, name, count))


@router.post("/schedules/{name}/fire", status_code=201)
async def fire(name: str, schedules: Schedules, principal: Principal = Write) -> FireOut:
    """Fire the target now, as the caller; answers with the recorded fire."""
    return await schedules.fire_now(principal, name)


@router.post("/schedules/{name}/pause")
def pause(name: str, schedules: Schedules, principal: Principal = Write) -> ScheduleOut:
    return schedules.set_paused(principal, name, True)


@router.post("/schedules/{name}/resume")
def resume(name: str, schedules: Schedules, principal: Principal = Write) -> ScheduleOut:
    return schedules.set_paused(principal, name, False)


@router.get("/schedules/{name}/fires")
async def fires(
    name: str,
    schedules: Schedules,
    paging: Paging,
    principal: Principal = Read,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: Outcome | None = None,
) -> PageOut[FireOut]:
    """Newest first; since/until filter the planned time."""
    return await page_in_thread(schedules.fires, principal, name, since=since, until=until, outcome=outcome, **paging)


@router.get("/calendars")
def list_calendars(schedules: Schedules, paging: Paging, principal: Principal = Read) -> PageOut[CalendarOut]:
    return PageOut.of(schedules.list_calendars(principal, **paging))


@router.post("/calendars", status_code=201)
def create_calendar(data: CalendarCreate, schedules: Schedules, principal: Principal = Write) -> CalendarOut:
    return schedules.create_calendar(principal, data)


@router.get("/calendars/{name}")
def get_calendar(name: str, schedules: Schedules, principal: Principal = Read) -> CalendarOut:
    return schedules.get_calendar(principal, name)


@router.patch("/calendars/{name}")
def update_calendar(name: str, data: CalendarUpdate, schedules: Schedules, principal: Principal = Write) -> CalendarOut:
    return schedules.update_calendar(principal, name, data)


@router.delete("/calendars/{name}", status_code=204)
def delete_calendar(name: str, schedules: Schedules, principal: Principal = Write) -> Response:
    schedules.delete_calendar(principal, name)
    return Response(status_code=204)
