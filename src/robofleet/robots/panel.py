"""Fleet and Robots pages: every agent and robot at a glance, a form for new robots, and a page per robot with its
lifecycle buttons, its definition (editable), its runs and its live output. Forms call RobotsService, which checks
the permission and writes the audit record."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from robofleet.agents import roster
from robofleet.auth.permissions import RobotRef
from robofleet.auth.principal import Principal
from robofleet.errors import Conflict, RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.robots.command_line import DEFINE_PERMISSION
from robofleet.robots.models import ACTIVE, PAUSED, RUNNING
from robofleet.robots.panel_forms import (
    LABELS,
    POLICIES,
    FormInvalid,
    RobotForm,
    blank_form,
    form_of,
    parse_create,
    parse_update,
    submitted,
)
from robofleet.robots.schemas import RobotOut, RunOut
from robofleet.web.context import get_context
from robofleet.web.deps import robots_of
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect

router = APIRouter(prefix="/panel", include_in_schema=False)
ACTIONS = ("start", "restart", "pause", "resume", "stop", "kill")
ROBOTS = "/panel/robots"


def latest_runs(ctx: Orchestrator, principal: Principal, robot: str | None, limit: int) -> list[dict[str, object]]:
    """Newest first, each with what the runs table shows besides its state: whether a pause is on its way, and how
    a paused run was paused (runs.js says the same of the runs that change live)."""
    runs = robots_of(ctx).list_runs(principal, robot=robot, state=None, limit=limit, cursor=None).items
    return [
        {
            **run.model_dump(mode="json"),
            "pausing": run.state == RUNNING and run.pause_asked_at is not None,
            "how_paused": how_paused(run),
        }
        for run in runs
    ]


def how_paused(run: RunOut) -> str | None:
    """How a paused run was paused, from its last "paused" transition: cooperative, or frozen with the reason when a
    pause fell back to freezing. None unless the run is paused (or when its agent did not say)."""
    if run.state != PAUSED:
        return None
    last: dict[str, Any] = next((change for change in reversed(run.transitions) if change.get("state") == PAUSED), {})
    if not last.get("pause"):
        return None
    return f"{last['pause']}: {last['reason']}" if last.get("reason") else str(last["pause"])


def agent_names(ctx: Orchestrator, principal: Principal, robots: list[RobotOut]) -> list[str]:
    """Suggestions for the agent field: this server's own, the ones robots already name, and the connected agents
    to those who may list agents."""
    connected = list(ctx.hub.agents) if ctx.hub and principal.can("agents:read") else []
    return sorted({"local", *connected, *(robot.agent for robot in robots)})


@router.get("/fleet")
def fleet_page(
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    robots = robots_of(ctx).list_robots(principal, limit=500, cursor=None).items
    runs = latest_runs(ctx, principal, None, 500)
    current: dict[str, dict[str, object]] = {}
    for run in runs:  # newest first: the first seen per robot is its latest
        current.setdefault(str(run["robot"]), run)
    # Every known agent, online or offline since when (in this worker thread: a store read and a snapshot of the
    # hub). Their hosts, OS users and systems are for those who may list agents (GET /api/v1/agents says the same).
    agents: list[dict[str, Any]] | None = None
    if principal.can("agents:read"):
        agents = roster.overview(ctx.store, ctx.hub) if ctx.hub else []
    return page(
        request, "fleet.html", principal, section="fleet", robots=robots, current=current, agents=agents, active=ACTIVE
    )


@router.get("/robots")
def robots_page(
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    return _robots_page(request, principal, ctx, blank_form())


def _robots_page(
    request: Request, principal: Principal, ctx: Orchestrator, form: RobotForm, status: int = 200
) -> Response:
    robots = robots_of(ctx).list_robots(principal, limit=500, cursor=None).items
    response = page(
        request,
        "robots.html",
        principal,
        status=status,
        section="robots",
        robots=robots,
        form=form,
        agents=agent_names(ctx, principal, robots),
        policies=POLICIES,
        define=principal.can(DEFINE_PERMISSION),
    )
    if form.open:
        response.headers["Cache-Control"] = "no-store"  # it echoes what was typed, env values included
    return response


@router.post("/robots")
async def robot_create(
    request: Request,
    principal: Principal = Depends(Require("robots:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    values = submitted(await request.form())

    def create() -> Response:
        form = RobotForm(values)
        try:
            robot = robots_of(ctx).create_robot(principal, parse_create(values))
        except FormInvalid as exc:
            form.errors = exc.errors
            return _robots_page(request, principal, ctx, form, status=422)
        except RobofleetError as exc:
            if isinstance(exc, Conflict) and (exc.details or {}).get("robot"):
                form.errors = {"name": exc.message}
            else:
                shown_at(form, exc)
            return _robots_page(request, principal, ctx, form, status=exc.status)
        return redirect(ROBOTS, notice=f"Robot {robot.name} created.")

    return await run_in_threadpool(create)


@router.get("/robots/{name}")
def robot_page(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    return _robot_page(request, principal, ctx, name, None)


def _robot_page(
    request: Request, principal: Principal, ctx: Orchestrator, name: str, form: RobotForm | None, status: int = 200
) -> Response:
    robot = robots_of(ctx).get_robot(principal, name)
    runs = latest_runs(ctx, principal, name, 50)
    target = RobotRef(robot.name, tuple(robot.tags))
    allowed = {
        "start": principal.can("robots:start", target),
        "stop": principal.can("robots:stop", target),
        "write": principal.can("robots:write", target),
    }
    response = page(
        request,
        "robot.html",
        principal,
        status=status,
        section="robots",
        robot=robot,
        runs=runs,
        allowed=allowed,
        active=ACTIVE,
        form=form or form_of(robot),
        agents=agent_names(ctx, principal, [robot]),
        policies=POLICIES,
        define=principal.can(DEFINE_PERMISSION),
    )
    if form is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/robots/{name}")
async def robot_update(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("robots:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    values = submitted(await request.form())
    back = f"{ROBOTS}/{name}"

    def update() -> Response:
        service = robots_of(ctx)
        form = RobotForm(values)
        try:
            change = parse_update(values, service.get_robot(principal, name))
            if not change.model_fields_set:
                return redirect(back, notice="Nothing changed.")
            service.update_robot(principal, name, change)
        except FormInvalid as exc:
            form.errors = exc.errors
            return _robot_page(request, principal, ctx, name, form, status=422)
        except RobofleetError as exc:
            shown_at(form, exc)
            return _robot_page(request, principal, ctx, name, form, status=exc.status)
        return redirect(back, notice=f"Robot {name} saved: {', '.join(sorted(change.model_fields_set))}.")

    return await run_in_threadpool(update)


def shown_at(form: RobotForm, exc: RobofleetError) -> None:
    """The service's refusal next to the field it names (a mask standing for no secret: env), else above the form."""
    field = exc.details.get("field") if isinstance(exc.details, dict) else None
    if field in LABELS:
        form.errors = {str(field): exc.message}
    else:
        form.message = exc.message


# Declared before the lifecycle route below, which would otherwise take "delete" for an action.
@router.post("/robots/{name}/delete")
async def robot_delete(
    name: str,
    principal: Principal = Depends(Require("robots:write", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    try:
        await run_in_threadpool(robots_of(ctx).delete_robot, principal, name)
    except RobofleetError as exc:
        return redirect(f"{ROBOTS}/{name}", error=exc.message)
    return redirect(ROBOTS, notice=f"Robot {name} deleted.")


@router.post("/robots/{name}/{action}")
async def robot_action(
    name: str,
    action: str,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    back = f"/panel/robots/{name}"
    service = robots_of(ctx)
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
