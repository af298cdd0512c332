"""HTTP routes of robots and runs; lifecycle actions are POSTs on the resource (DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from robofleet.auth.principal import Principal
from robofleet.events import EventHub
from robofleet.robots.reasons import Origin
from robofleet.robots.schemas import RobotCreate, RobotOut, RobotUpdate, RunFilter, RunOut
from robofleet.robots.service import TOPIC
from robofleet.robots.states import RunState
from robofleet.web.deps import Context, Robots
from robofleet.web.paging import Paging, page_in_thread
from robofleet.web.schemas import PageOut
from robofleet.web.security import Require
from robofleet.web.sse import sse_message, sse_response, sse_stream

router = APIRouter(prefix="/api/v1", tags=["robots"])
# Run ids are 64-bit integers in both stores: a larger number is no run, refused before the store sees it.
RunId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


@router.get("/robots")
def list_robots(
    robots: Robots, paging: Paging, principal: Principal = Depends(Require("robots:read"))
) -> PageOut[RobotOut]:
    return PageOut.of(robots.list_robots(principal, **paging))


@router.post("/robots", status_code=201)
def create_robot(
    data: RobotCreate, robots: Robots, principal: Principal = Depends(Require("robots:write"))
) -> RobotOut:
    return robots.create_robot(principal, data)


@router.get("/robots/{name}")
def get_robot(name: str, robots: Robots, principal: Principal = Depends(Require("robots:read"))) -> RobotOut:
    return robots.get_robot(principal, name)


@router.patch("/robots/{name}")
def update_robot(
    name: str, data: RobotUpdate, robots: Robots, principal: Principal = Depends(Require("robots:write"))
) -> RobotOut:
    return robots.update_robot(principal, name, data)


@router.delete("/robots/{name}", status_code=204)
def delete_robot(name: str, robots: Robots, principal: Principal = Depends(Require("robots:write"))) -> Response:
    robots.delete_robot(principal, name)
    return Response(status_code=204)


@router.post("/robots/{name}/start", status_code=201)
async def start_robot(name: str, robots: Robots, principal: Principal = Depends(Require("robots:start"))) -> RunOut:
    """Start a run; answers with the new run once its process runs."""
    return await robots.start(principal, name)


@router.post("/robots/{name}/restart", status_code=201)
async def restart_robot(name: str, robots: Robots, principal: Principal = Depends(Require("robots:start"))) -> RunOut:
    """Safe stop of the active runs, then a new start."""
    return await robots.restart(principal, name)


def _robot_action(action: str) -> None:
    async def act(name: str, robots: Robots, principal: Principal = Depends(Require("robots:stop"))) -> list[RunOut]:
        return await robots.act_on_robot(principal, name, action)

    act.__doc__ = f"{action.capitalize()} every active run of the robot (409 when it has none)."
    router.add_api_route(f"/robots/{{name}}/{action}", act, methods=["POST"], name=f"robot_{action}")


def _run_action(action: str) -> None:
    async def act(run_id: RunId, robots: Robots, principal: Principal = Depends(Require("robots:stop"))) -> RunOut:
        return await robots.act(principal, run_id, action)

    act.__doc__ = f"{action.capitalize()} one run (409 when its state does not allow it)."
    router.add_api_route(f"/runs/{{run_id}}/{action}", act, methods=["POST"], name=f"run_{action}")


for _action in ("pause", "resume", "stop", "kill"):
    _robot_action(_action)
    _run_action(_action)


async def run_filter(
    robot: str | None = Query(None, max_length=64, description="Runs of this robot"),
    state: list[RunState] = Query([], description="In one of these states (repeat it: state=failed&state=lost)"),
    agent: str | None = Query(None, max_length=64, description="Run on this agent"),
    since: datetime | None = Query(None, description="Created at or after this time, with its zone"),
    until: datetime | None = Query(None, description="Created before this time, with its zone"),
    origin: list[Origin] = Query([], description="Started by: user, token, schedule, restart, cli, system"),
    requested_by: str | None = Query(
        None, max_length=128, description="Started by this user (panel or any of their tokens) or schedule:<name>"
    ),
) -> RunFilter:
    """The runs list's filters as one RunFilter; 422 naming the filter that does not fit."""
    try:
        return RunFilter(
            robot=robot or None,
            state=state,
            agent=agent or None,
            since=since,
            until=until,
            origin=origin,
            requested_by=requested_by or None,
        )
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


@router.get("/runs")
async def list_runs(
    robots: Robots,
    paging: Paging,
    principal: Principal = Depends(Require("robots:read")),
    where: RunFilter = Depends(run_filter),
) -> PageOut[RunOut]:
    """Runs across the robots the caller may see, newest first, each with its duration, who or what started it
    (origin) and, for a failed, killed or lost run, why (error)."""
    return await page_in_thread(robots.list_runs, principal, robot=None, state=None, where=where, **paging)


@router.get("/runs/{run_id}")
def get_run(run_id: RunId, robots: Robots, principal: Principal = Depends(Require("robots:read"))) -> RunOut:
    return robots.get_run(principal, run_id)


@router.get("/runs-stream", include_in_schema=True)
async def runs_stream(
    request: Request, robots: Robots, ctx: Context, principal: Principal = Depends(Require("robots:read"))
) -> StreamingResponse:
    """Server-sent events: one `run` event per state change of any run the caller may see."""
    visible = await run_in_threadpool(robots.visible_robots, principal)
    events: EventHub = ctx.events

    def render(payload: dict[str, Any]) -> str | None:
        if visible is not None and payload["robot"] not in visible:
            return None
        return sse_message("run", payload, event_id=f"{payload['id']}-{len(payload['transitions'])}")

    return sse_response(sse_stream(events, TOPIC, render, request.is_disconnected), request, "robots:read")
