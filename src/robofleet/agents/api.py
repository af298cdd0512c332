"""HTTP routes of agents: who is connected, their machine, and remote administration for `agents:admin`. Each
route parses, asks agents/service.py and shapes the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from robofleet.agents.service import AgentsService
from robofleet.auth.principal import Principal
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.security import Require

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


class ShellInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str = Field(min_length=1, max_length=10_000)
    timeout: float = Field(60, gt=0, le=3600)
    max_output: int = Field(64_000, gt=0, le=1_000_000)
    cwd: str | None = Field(None, max_length=1024)


@router.get("")
async def list_agents(
    principal: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> dict[str, Any]:
    """Every agent known: the connected ones, then those offline (since when and why); a paginated shape, though
    one page holds them all."""
    return {"items": await AgentsService.of(ctx).list_agents(principal), "next_cursor": None}


@router.get("/{name}")
async def get_agent(
    name: str, principal: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> dict[str, Any]:
    """The agent, online or offline; 409 agent_offline for a name that never connected."""
    return await AgentsService.of(ctx).get_agent(principal, name)


@router.get("/{name}/system")
async def system_info(
    name: str, principal: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> dict[str, Any]:
    """CPU, memory, disk, uptime and logged-in users of the agent's machine."""
    return await AgentsService.of(ctx).system_info(principal, name)


@router.get("/{name}/processes")
async def processes(
    name: str, principal: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> dict[str, Any]:
    return await AgentsService.of(ctx).processes(principal, name)


@router.post("/{name}/shell")
async def shell(
    name: str,
    data: ShellInput,
    principal: Principal = Depends(Require("agents:admin")),
    ctx: Orchestrator = Depends(get_context),
) -> dict[str, Any]:
    """Run a shell command on the agent's machine (timeout, capped output); audited with the command line."""
    return await AgentsService.of(ctx).shell(
        principal, name, data.command, time_limit=data.timeout, max_output=data.max_output, cwd=data.cwd
    )


@router.put("/{name}/files", status_code=201)
async def put_file(
    name: str,
    request: Request,
    path: str = Query(min_length=1, max_length=4096),
    principal: Principal = Depends(Require("agents:admin")),
    ctx: Orchestrator = Depends(get_context),
) -> dict[str, Any]:
    """Upload the request body to `path` on the agent, in chunks, checked with sha256 at the end."""
    return await AgentsService.of(ctx).put_file(principal, name, path, await request.body())


@router.get("/{name}/files")
async def get_file(
    name: str,
    path: str = Query(min_length=1, max_length=4096),
    principal: Principal = Depends(Require("agents:admin")),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    """Download `path` from the agent (chunked, sha256 checked)."""
    file = await AgentsService.of(ctx).get_file(principal, name, path)
    return Response(file.content, media_type="application/octet-stream", headers={"X-Content-SHA256": file.sha256})
