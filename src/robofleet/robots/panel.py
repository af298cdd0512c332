"""Fleet and Robots pages: every agent and robot at a glance, and a page per robot with its lifecycle buttons,
its runs and its live output."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from robofleet.auth.permissions import RobotRef
from robofleet.auth.principal import Principal
from robofleet.errors import RobofleetError
from robofleet.robots.api import service_of
from robofleet.robots.models import ACTIVE
from robofleet.web.context import AppContext, get_context
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect

router = APIRouter(prefix="/panel", include_in_schema=False)
ACTIONS = ("start", "restart", "pause", "resume", "stop", "kill")


def latest_runs(ctx: AppContext, principal: Principal, robot: str | None, limit: int) -> list[dict[str, object]]:
    runs = service_of(ctx).list_runs(principal, robot=robot, state=None, limit=limit, cursor=None).items
    return [run.model_dump(mode="json") for run in runs]


@router.get("/fleet")
def fleet_page(
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: AppContext = Depends(get_context),
) -> Response:
    robots = service_of(ctx).list_robots(principal, limit=500, cursor=None).items
    runs = latest_runs(ctx, principal, None, 500)
    current: dict[str, dict[str, object]] = {}
    for run in runs:  # newest first: the first seen per robot is its latest
        current.setdefault(str(run["robot"]), run)
    agents = [state.public() for state in ctx.hub.agents.values()] if ctx.hub else []
    return page(
        request, "fleet.html", principal, section="fleet", robots=robots, current=current, agents=agents, active=ACTIVE
    )


@router.get("/robots")
def robots_page(
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: AppContext = Depends(get_context),
) -> Response:
    robots = service_of(ctx).list_robots(principal, limit=500, cursor=None).items
    return page(request, "robots.html", principal, section="robots", robots=robots)


@router.get("/robots/{name}")
def robot_page(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: AppContext = Depends(get_context),
) -> Response:
    robot = service_of(ctx).get_robot(principal, name)
    runs = latest_runs(ctx, principal, name, 50)
    target = RobotRef(robot.name, tuple(robot.tags))
    allowed = {"start": principal.can("robots:start", target), "stop": principal.can("robots:stop", target)}
    return page(
        request, "robot.html", principal, section="robots", robot=robot, runs=runs, allowed=allowed, active=ACTIVE
    )


@router.post("/robots/{name}/{action}")
async def robot_action(
    name: str,
    action: str,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: AppContext = Depends(get_context),
) -> Response:
    back = f"/panel/robots/{name}"
    service = service_of(ctx)
    try:
        if action == "start":
            run = await service.start(principal, name)
            return redirect(back, notice=f"Run {run.id} started.")
        if action == "restart":
            run = await service.restart(principal, name)
            return redirect(back, notice=f"Restarted: run {run.id}.")
        if action not in ACTIONS:
            return redirect(back, error=f"Unknown action {action!r}.")
        runs = await service.act_on_robot(principal, name, action)
        return redirect(back, notice=f"{action.capitalize()}: run {', '.join(str(r.id) for r in runs)}.")
    except RobofleetError as exc:
        return redirect(back, error=exc.message)
