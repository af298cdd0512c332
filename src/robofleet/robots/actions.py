"""Robots and runs as actions: the same service functions as their routes, with the same permission and robot
scope, so the scheduler, the console and outside systems act on robots through activities."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.auth.principal import SCHEDULE_ACTOR
from robofleet.errors import Invalid, StoreUnavailable
from robofleet.robots.reasons import Origin
from robofleet.robots.schemas import RobotName, RunFilter
from robofleet.robots.service import RobotsService
from robofleet.robots.states import RunState


class RobotParams(Params):
    name: RobotName


class RobotPageParams(Params):
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200)


class RunParams(Params):
    id: int = Field(ge=1, le=2**63 - 1)


class RunPageParams(RobotPageParams):
    robot: RobotName | None = None
    state: RunState | None = None
    agent: str | None = Field(None, min_length=1, max_length=64)
    since: datetime | None = Field(None, description="Created at or after this time, with its zone")
    until: datetime | None = Field(None, description="Created before this time, with its zone")
    origin: Origin | None = Field(None, description="Started by: user, token, schedule, restart, cli, system")
    requested_by: str | None = Field(None, min_length=1, max_length=128)

    def where(self) -> RunFilter:
        """The filters as the service takes them; ValidationError when they cannot be met together."""
        return RunFilter(
            robot=self.robot,
            state=[self.state] if self.state else [],
            agent=self.agent,
            since=self.since,
            until=self.until,
            origin=[self.origin] if self.origin else [],
            requested_by=self.requested_by,
        )


def service(ctx: ActionContext) -> RobotsService:
    if ctx.app.robots is None:
        raise StoreUnavailable("robots are not available yet: the store is not ready")
    return ctx.app.robots


def page_dict(page: Any) -> dict[str, Any]:
    return {"items": [item.model_dump(mode="json") for item in page.items], "next_cursor": page.next_cursor}


RobotAction = Literal["pause", "resume", "stop", "kill"]


def register(registry: Registry) -> None:
    @registry.register("robots.list", permission="robots:read", params=RobotPageParams)
    def list_robots(ctx: ActionContext, params: RobotPageParams) -> dict[str, Any]:
        """List the robots the caller may see, a page at a time."""
        return page_dict(service(ctx).list_robots(ctx.principal, limit=params.limit, cursor=params.cursor))

    @registry.register("robots.get", permission="robots:read", params=RobotParams)
    def get_robot(ctx: ActionContext, params: RobotParams) -> dict[str, Any]:
        """One robot's definition (secret-looking env values masked)."""
        return service(ctx).get_robot(ctx.principal, params.name).model_dump(mode="json")

    @registry.register("robots.start", permission="robots:start", params=RobotParams)
    async def start(ctx: ActionContext, params: RobotParams) -> dict[str, Any]:
        """Start a run of the robot; returns the run once its process runs."""
        # A schedule's start is planned, not an operator's: the run says so, as a restart policy's does.
        planned = ctx.principal.username.startswith(SCHEDULE_ACTOR)
        run = await service(ctx).start(ctx.principal, params.name, manual=not planned)
        return run.model_dump(mode="json")

    @registry.register("robots.restart", permission="robots:start", params=RobotParams)
    async def restart(ctx: ActionContext, params: RobotParams) -> dict[str, Any]:
        """Stop the robot's active runs safely, then start a new run."""
        run = await service(ctx).restart(ctx.principal, params.name)
        return run.model_dump(mode="json")

    def on_active_runs(action: RobotAction, doc: str) -> None:
        async def act(ctx: ActionContext, params: RobotParams) -> dict[str, Any]:
            runs = await service(ctx).act_on_robot(ctx.principal, params.name, action)
            return {"runs": [run.model_dump(mode="json") for run in runs]}

        act.__doc__ = doc
        registry.register(f"robots.{action}", permission="robots:stop", params=RobotParams)(act)

    on_active_runs("pause", "Pause every active run of the robot (frozen, or at its next checkpoint).")
    on_active_runs("resume", "Resume every paused run of the robot.")
    on_active_runs("stop", "Stop every active run safely (SIGTERM and should_stop(), killed at safe_stop_timeout).")
    on_active_runs("kill", "Kill every active run of the robot, whole process trees.")

    @registry.register("runs.list", permission="robots:read", params=RunPageParams)
    def list_runs(ctx: ActionContext, params: RunPageParams) -> dict[str, Any]:
        """List runs, newest first, of the robots the caller may see, with their duration and why each failure
        ended (error); filters as GET /api/v1/runs has them."""
        try:
            where = params.where()
        except ValidationError as exc:
            raise Invalid(str(exc.errors(include_url=False)[0]["msg"])) from None
        page = service(ctx).list_runs(
            ctx.principal, robot=None, state=None, where=where, limit=params.limit, cursor=params.cursor
        )
        return page_dict(page)

    @registry.register("runs.get", permission="robots:read", params=RunParams)
    def get_run(ctx: ActionContext, params: RunParams) -> dict[str, Any]:
        """One run with its history of transitions."""
        return service(ctx).get_run(ctx.principal, params.id).model_dump(mode="json")
