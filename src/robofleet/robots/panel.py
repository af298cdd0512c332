"""Fleet and Robots pages: every agent and robot at a glance, a form for new robots, and a page per robot with its
lifecycle buttons (only those that fit its runs' states enabled; they act without a reload), its definition
(editable), its runs and its output (its run's so far, then live). Forms call RobotsService, which checks the
permission and writes the audit record."""

from __future__ import annotations

from typing import Any, NamedTuple

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from robofleet.agents import roster
from robofleet.auth.permissions import RobotRef
from robofleet.auth.principal import Principal
from robofleet.errors import Conflict, RobofleetError, StoreUnavailable
from robofleet.logs.filters import Filters, narrowed
from robofleet.orchestrator import Orchestrator
from robofleet.robots.command_line import DEFINE_PERMISSION
from robofleet.robots.controls import controls
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
from robofleet.sessions.service import SessionsService
from robofleet.web.context import get_context
from robofleet.web.deps import logs_of, robots_of
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect

router = APIRouter(prefix="/panel", include_in_schema=False)
ACTIONS = ("start", "restart", "pause", "resume", "stop", "kill")
ROBOTS = "/panel/robots"
OUTPUT_LINES = 500  # of the shown run's output, rendered with the page (the live tail keeps as many)


def latest_runs(ctx: Orchestrator, principal: Principal, robot: str | None, limit: int) -> list[dict[str, object]]:
    """Newest first, each with what the runs table shows besides its state: whether a pause is on its way, and how
    a paused run was paused (runs.js says the same of the runs that change live)."""
    runs = robots_of(ctx).list_runs(principal, robot=robot, state=None, limit=limit, cursor=None).items
    return [shown(run) for run in runs]


def shown(run: RunOut) -> dict[str, object]:
    return {
        **run.model_dump(mode="json"),
        "pausing": run.state == RUNNING and run.pause_asked_at is not None,
        "how_paused": how_paused(run),
    }


class Output(NamedTuple):
    """What the robot page shows of a run's output as it opens: its last lines, oldest first, and the record id
    the live tail goes on after (so that no line is missed or shown twice)."""

    run_id: int | None
    lines: list[dict[str, Any]]
    earlier: bool  # the run wrote more lines before these
    after: int


def output_so_far(ctx: Orchestrator, principal: Principal, robot: RobotOut, runs: list[RunOut]) -> Output | None:
    """The output of the robot's active run (else of its last run) so far; None for a viewer who may not read the
    robot's logs."""
    if not principal.can("logs:read", RobotRef(robot.name, tuple(robot.tags))):
        return None
    logs = logs_of(ctx)
    after = logs.last_id()  # before the search: a line stored meanwhile comes in the search or the tail
    run = next((run for run in runs if run.state in ACTIVE), runs[0] if runs else None)
    if run is None:
        return Output(None, [], False, after)
    scope = robots_of(ctx).robot_scope(principal, "logs:read")
    filters = narrowed(Filters(source=f"robot:{robot.name}", run_id=str(run.id)), scope)
    found = logs.search(filters, limit=OUTPUT_LINES + 1, cursor=None, order="desc")["items"]
    lines = list(reversed(found[:OUTPUT_LINES]))
    return Output(run.id, lines, len(found) > OUTPUT_LINES, max([after, *(int(line["id"]) for line in lines)]))


def controls_of(principal: Principal, robot: RobotOut, runs: list[RunOut]) -> dict[str, Any]:
    """What robot_controls.html shows: the buttons that fit the runs' states, and which of them the viewer holds."""
    target = RobotRef(robot.name, tuple(robot.tags))
    return {
        "robot": robot,
        "controls": controls(runs, robot.max_concurrent),
        "allowed": {
            "start": principal.can("robots:start", target),
            "stop": principal.can("robots:stop", target),
            "write": principal.can("robots:write", target),
        },
    }


def how_paused(run: RunOut) -> str | None:
    """How a paused run was paused, from its last "paused" transition: cooperative, or frozen with the reason when a
    pause fell back to freezing. None unless the run is paused (or when its agent did not say)."""
    if run.state != PAUSED:
        return None
    last: dict[str, Any] = next((change for change in reversed(run.transitions) if change.get("state") == PAUSED), {})
    if not last.get("pause"):
        return None
    return f"{last['pause']}: {last['reason']}" if last.get("reason") else str(last["pause"])


def agent_choices(ctx: Orchestrator, principal: Principal, robots: list[RobotOut]) -> list[tuple[str, str]]:
    """The agent field's choices, each with its state: this server's own, the ones robots already name, and to
    those who may list agents every known agent, online or offline (agents/roster.py; blocking: a store read)."""
    known: dict[str, str] = {}
    if ctx.hub is not None and principal.can("agents:read"):
        for agent in roster.overview(ctx.store, ctx.hub):
            known[agent["name"]] = "online" if agent["online"] else "offline"
    names = sorted({"local", *known, *(robot.agent for robot in robots)})
    return [(name, known.get(name, "")) for name in names]


def session_choices(ctx: Orchestrator, principal: Principal) -> list[tuple[str, str, str]]:
    """The session field's suggestions: (name, agent, state) of the graphical sessions the caller may see (blocking:
    a store read). The service checks the one chosen (on the robot's agent) when the form is saved."""
    if not principal.can("sessions:read"):
        return []
    try:
        sessions = ctx.service("sessions")
    except StoreUnavailable:
        return []
    assert isinstance(sessions, SessionsService)
    listed = sessions.list_sessions(principal, limit=500, cursor=None).items
    return [(session.name, session.agent, str(session.state)) for session in listed]


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
        agents=agent_choices(ctx, principal, robots),
        sessions=session_choices(ctx, principal),
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
    service = robots_of(ctx)
    robot = service.get_robot(principal, name)
    recent = service.list_runs(principal, robot=name, state=None, limit=50, cursor=None).items
    response = page(
        request,
        "robot.html",
        principal,
        status=status,
        section="robots",
        runs=[shown(run) for run in recent],
        output=output_so_far(ctx, principal, robot, recent),
        **controls_of(principal, robot, recent),
        active=ACTIVE,
        form=form or form_of(robot),
        agents=agent_choices(ctx, principal, [robot]),
        sessions=session_choices(ctx, principal),
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


@router.get("/robots/{name}/controls")
def robot_controls(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    """The robot's buttons alone, as its runs' states allow them now (runs.js asks when a run changes)."""
    return _controls(request, principal, ctx, name, None)


def _controls(
    request: Request, principal: Principal, ctx: Orchestrator, name: str, notice: dict[str, str] | None
) -> Response:
    service = robots_of(ctx)
    robot = service.get_robot(principal, name)
    runs = service.list_runs(principal, robot=name, state=None, limit=50, cursor=None).items
    response = page(request, "robot_controls.html", principal, notice=notice, **controls_of(principal, robot, runs))
    response.headers["Cache-Control"] = "no-store"
    return response


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
    request: Request,
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    """A lifecycle button. From htmx (the robot page's buttons): the buttons again, as the runs' states now allow
    them, with what was done; without it (a plain form post): back to the robot page with the same words."""
    back = f"/panel/robots/{name}"
    service = robots_of(ctx)
    try:
        if action == "start":
            run = await service.start(principal, name)
            said = {"kind": "notice", "text": f"Run {run.id} started."}
        elif action == "restart":
            run = await service.restart(principal, name)
            said = {"kind": "notice", "text": f"Restarted: run {run.id}."}
        elif action not in ACTIONS:
            said = {"kind": "error", "text": f"Unknown action {action!r}."}
        else:
            runs = await service.act_on_robot(principal, name, action)
            said = {"kind": "notice", "text": f"{action.capitalize()}: run {', '.join(str(r.id) for r in runs)}."}
    except RobofleetError as exc:
        said = {"kind": "error", "text": exc.message}
    if request.headers.get("HX-Request") == "true":
        return await run_in_threadpool(_controls, request, principal, ctx, name, said)
    if said["kind"] == "error":
        return redirect(back, error=said["text"])
    return redirect(back, notice=said["text"])
