"""Schedules as actions: the same service functions as their routes, with the same permissions (schedules:read or
schedules:write, and for a change or a fire, the caller's own right to submit the target)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.schedules.schemas import ScheduleCreate, ScheduleName, ScheduleUpdate
from robofleet.schedules.service import MAX_PREVIEW, SchedulesService


class NameParams(Params):
    name: ScheduleName


class PageParams(Params):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200)


class CreateParams(ScheduleCreate):
    pass


class UpdateParams(ScheduleUpdate):
    name: ScheduleName


class PreviewParams(NameParams):
    count: int = Field(20, ge=1, le=MAX_PREVIEW)


def service(ctx: ActionContext) -> SchedulesService:
    found = ctx.app.service("schedules")
    assert isinstance(found, SchedulesService)
    return found


def register(registry: Registry) -> None:
    @registry.register("schedules.list", permission="schedules:read", params=PageParams)
    def list_schedules(ctx: ActionContext, params: PageParams) -> dict[str, Any]:
        """List the schedules the caller may see, a page at a time."""
        page = service(ctx).list_schedules(ctx.principal, limit=params.limit, cursor=params.cursor)
        return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}

    @registry.register("schedules.get", permission="schedules:read", params=NameParams)
    def get_schedule(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """One schedule with its next fire and last outcome."""
        return service(ctx).get_schedule(ctx.principal, params.name).model_dump(mode="json")

    @registry.register("schedules.create", permission="schedules:write", params=CreateParams)
    def create(ctx: ActionContext, params: CreateParams) -> dict[str, Any]:
        """Create a schedule; the caller must be allowed to submit its target."""
        data = ScheduleCreate(**params.model_dump())
        return service(ctx).create_schedule(ctx.principal, data).model_dump(mode="json")

    @registry.register("schedules.update", permission="schedules:write", params=UpdateParams)
    def update(ctx: ActionContext, params: UpdateParams) -> dict[str, Any]:
        """Change a schedule (fields left out keep their value)."""
        data = ScheduleUpdate(**params.model_dump(exclude={"name"}, exclude_unset=True))
        return service(ctx).update_schedule(ctx.principal, params.name, data).model_dump(mode="json")

    @registry.register("schedules.delete", permission="schedules:write", params=NameParams)
    def delete(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Delete a schedule and its fires."""
        service(ctx).delete_schedule(ctx.principal, params.name)
        return {"deleted": params.name}

    @registry.register("schedules.fire", permission="schedules:write", params=NameParams)
    async def fire(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Fire the schedule's target now, as the caller; returns the recorded fire."""
        return (await service(ctx).fire_now(ctx.principal, params.name)).model_dump(mode="json")

    @registry.register("schedules.pause", permission="schedules:write", params=NameParams)
    def pause(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Pause a schedule: it fires nothing until resumed."""
        return service(ctx).set_paused(ctx.principal, params.name, True).model_dump(mode="json")

    @registry.register("schedules.resume", permission="schedules:write", params=NameParams)
    def resume(ctx: ActionContext, params: NameParams) -> dict[str, Any]:
        """Resume a paused schedule, planned again from now."""
        return service(ctx).set_paused(ctx.principal, params.name, False).model_dump(mode="json")

    @registry.register("schedules.preview", permission="schedules:read", params=PreviewParams)
    def preview(ctx: ActionContext, params: PreviewParams) -> dict[str, Any]:
        """The schedule's next fires after calendars and windows."""
        fires = service(ctx).preview(ctx.principal, params.name, params.count)
        return {"fires": [fire.isoformat() for fire in fires]}
