"""HTTP routes of robots and runs; lifecycle actions are POSTs on the resource (DESIGN.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from robofleet.auth.principal import Principal
from robofleet.errors import StoreUnavailable
from robofleet.orchestrator import Orchestrator
from robofleet.robots.models import ACTIVE, ENDED
from robofleet.robots.schemas import RobotCreate, RobotOut, RobotUpdate, RunOut
from robofleet.robots.service import TOPIC, RobotsService
from robofleet.web.context import get_context
from robofleet.web.schemas import PageOut
from robofleet.web.security import Require
from robofleet.web.sse import sse_message, sse_stream

router = APIRouter(prefix="/api/v1", tags=["robots"])
Limit = Query(100, ge=1, le=500)
Cursor = Query(None, max_length=200)
STATES = (*ACTIVE, *ENDED)


def service_of(ctx: Orchestrator) -> RobotsService:
    if ctx.robots is None:
        raise StoreUnavailable("robots are not available yet: the store is not ready")
    return ctx.robots


@router.get("/robots")
def list_robots(
    principal: Principal = Depends(Require("robots:read")),
    ctx: Orchestrator = Depends(get_context),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> PageOut[RobotOut]:
    return PageOut.of(service_of(ctx).list_robots(principal, limit=limit, cursor=cursor))


@router.post("/robots", status_code=201)
def create_robot(
    data: RobotCreate, principal: Principal = Depends(Require("robots:write")), ctx: Orchestrator = Depends(get_context)
) -> RobotOut:
    return service_of(ctx).create_robot(principal, data)


@router.get("/robots/{name}")
def get_robot(
    name: str, principal: Principal = Depends(Require("robots:read")), ctx: Orchestrator = Depends(get_context)
) -> RobotOut:
    return service_of(ctx).get_robot(principal, name)


@router.patch("/robots/{name}")
def update_robot(
    name: str,
    data: RobotUpdate,
    principal: Principal = Depends(Require("robots:write")),
    ctx: Orchestrator = Depends(get_context),
) -> RobotOut:
    return service_of(ctx).update_robot(principal, name, data)


@router.delete("/robots/{name}", status_code=204)
def delete_robot(
    name: str, principal: Principal = Depends(Require("robots:write")), ctx: Orchestrator = Depends(get_context)
) -> Response:
    service_of(ctx).delete_robot(principal, name)
    return Response(status_code=204)


@router.post("/robots/{name}/start", status_code=201)
async def start_robot(
    name: str, principal: Principal = Depends(Require("robots:start")), ctx: Orchestrator = Depends(get_context)
) -> RunOut:
    """Start a run; answers with the new run once its process runs."""
    return await service_of(ctx).start(principal, name)


@router.post("/robots/{name}/restart", status_code=201)
async def restart_robot(
    name: str, principal: Principal = Depends(Require("robots:start")), ctx: Orchestrator = Depends(get_context)
) -> RunOut:
    """Safe stop of the active runs, then a new start."""
    return await service_of(ctx).restart(principal, name)


def _robot_action(action: str) -> None:
    async def act(
        name: str, principal: Principal = Depends(Require("robots:stop")), ctx: Orchestrator = Depends(get_context)
    ) -> list[RunOut]:
        return await service_of(ctx).act_on_robot(principal, name, action)

    act.__doc__ = f"{action.capitalize()} every active run of the robot (409 when it has none)."
    router.add_api_route(f"/robots/{{name}}/{action}", act, methods=["POST"], name=f"robot_{action}")


def _run_action(action: str) -> None:
    async def act(
        run_id: int, principal: Principal = Depends(Require("robots:stop")), ctx: Orchestrator = Depends(get_context)
    ) -> RunOut:
        return await service_of(ctx).act(principal, run_id, action)

    act.__doc__ = f"{action.capitalize()} one run (409 when its state does not allow it)."
    router.add_api_route(f"/runs/{{run_id}}/{action}", act, methods=["POST"], name=f"run_{action}")


for _action in ("pause", "resume", "stop", "kill"):
    _robot_action(_action)
    _run_action(_action)


@router.get("/runs")
async def list_runs(
    principal: Principal = Depends(Require("robots:read")),
    ctx: Orchestrator = Depends(get_context),
    robot: str | None = Query(None, max_length=64),
    state: str | None = Query(None, description=", ".join(STATES)),
    limit: int = Limit,
    cursor: str | None = Cursor,
) -> PageOut[RunOut]:
    """Newest first."""
    if state is not None and state not in STATES:
        from robofleet.errors import Invalid

        raise Invalid(f"state must be one of {', '.join(STATES)}", details={"field": "state"})
    page = await run_in_threadpool(
        service_of(ctx).list_runs, principal, robot=robot, state=state, limit=limit, cursor=cursor
    )
    return PageOut.of(page)


@router.get("/runs/{run_id}")
def get_run(
    run_id: int, principal: Principal = Depends(Require("robots:read")), ctx: Orchestrator = Depends(get_context)
) -> RunOut:
    return service_of(ctx).get_run(principal, run_id)


@router.get("/runs-stream", include_in_schema=True)
async def runs_stream(
    request: Request, principal: Principal = Depends(Require("robots:read")), ctx: Orchestrator = Depends(get_context)
) -> StreamingResponse:
    """Server-sent events: one `run` event per state change of any run the caller may see."""
    visible = await run_in_threadpool(service_of(ctx).visible_robots, principal)

    def render(payload: dict[str, Any]) -> str | None:
        if visible is not None and payload["robot"] not in visible:
            return None
        return sse_message("run", payload, event_id=f"{payload['id']}-{len(payload['transitions'])}")

    return StreamingResponse(
        sse_stream(request.app.state.events, TOPIC, render, request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store"},
    )
