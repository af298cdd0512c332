"""HTTP routes of agents: who is connected, their machine, and remote administration for `agents:admin`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from robofleet.agents.hub import AgentHub
from robofleet.auth.audit import record_alone
from robofleet.auth.principal import Principal
from robofleet.errors import Conflict, RobofleetError, StoreUnavailable, TooLarge
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.security import Require

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
CHUNK = 1024 * 1024


class ShellInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str = Field(min_length=1, max_length=10_000)
    timeout: float = Field(60, gt=0, le=3600)
    max_output: int = Field(64_000, gt=0, le=1_000_000)
    cwd: str | None = Field(None, max_length=1024)


def hub_of(ctx: Orchestrator) -> AgentHub:
    if ctx.hub is None:
        raise StoreUnavailable("agents are not available yet: the store is not ready")
    return ctx.hub


# On the event loop, not in a worker thread: the loop changes the hub's agents as they come and go, and a thread
# iterating them meanwhile fails ("dictionary changed size during iteration").
@router.get("")
async def list_agents(
    _: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> dict[str, Any]:
    """The connected agents (a paginated shape, though one page holds them all)."""
    return {"items": [state.public() for state in hub_of(ctx).agents.values()], "next_cursor": None}


@router.get("/{name}")
async def get_agent(
    name: str, _: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> dict[str, Any]:
    return hub_of(ctx).require(name).public()


@router.get("/{name}/system")
async def system_info(
    name: str, _: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> Any:
    """CPU, memory, disk, uptime and logged-in users of the agent's machine."""
    return await hub_of(ctx).command(name, "system.info", {})


@router.get("/{name}/processes")
async def processes(
    name: str, _: Principal = Depends(Require("agents:read")), ctx: Orchestrator = Depends(get_context)
) -> Any:
    return await hub_of(ctx).command(name, "process.list", {})


async def audited_command(
    ctx: Orchestrator, principal: Principal, action: str, target: str, details: dict[str, Any], command: Awaitable[Any]
) -> Any:
    """Await an agent command and audit it, with its outcome, whichever way it ends."""
    try:
        result = await command
    except RobofleetError as exc:
        await asyncio.to_thread(
            record_alone, ctx.store, principal, action, target, "failed", {**details, "error": exc.message}
        )
        raise
    await asyncio.to_thread(record_alone, ctx.store, principal, action, target, "ok", details)
    return result


@router.post("/{name}/shell")
async def shell(
    name: str,
    data: ShellInput,
    principal: Principal = Depends(Require("agents:admin")),
    ctx: Orchestrator = Depends(get_context),
) -> Any:
    """Run a shell command on the agent's machine (timeout, capped output); audited with the command line."""
    command = hub_of(ctx).command(name, "shell.run", data.model_dump(), within=data.timeout + 10)
    return await audited_command(ctx, principal, "agent.shell", name, {"command": data.command[:2000]}, command)


@router.put("/{name}/files", status_code=201)
async def put_file(
    name: str,
    request: Request,
    path: str = Query(min_length=1, max_length=4096),
    principal: Principal = Depends(Require("agents:admin")),
    ctx: Orchestrator = Depends(get_context),
) -> Any:
    """Upload the request body to `path` on the agent, in chunks, checked with sha256 at the end."""
    body = await request.body()
    limit = ctx.settings.server.max_body_bytes
    if len(body) > limit:
        raise TooLarge(f"the file is larger than {limit} bytes", details={"max_bytes": limit})
    digest = hashlib.sha256(body).hexdigest()
    hub = hub_of(ctx)

    async def send() -> Any:
        result: Any = None
        for offset in range(0, max(len(body), 1), CHUNK):
            chunk = body[offset : offset + CHUNK]
            last = offset + CHUNK >= len(body)
            args = {
                "path": path,
                "offset": offset,
                "data": base64.b64encode(chunk).decode(),
                **({"sha256": digest} if last else {}),
            }
            result = await hub.command(name, "file.put", args)
        return result

    details = {"path": path, "size": len(body), "sha256": digest}
    return await audited_command(ctx, principal, "agent.file_put", name, details, send())


@router.get("/{name}/files")
async def get_file(
    name: str,
    path: str = Query(min_length=1, max_length=4096),
    principal: Principal = Depends(Require("agents:admin")),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    """Download `path` from the agent (chunked, sha256 checked)."""
    hub = hub_of(ctx)
    offset, parts = 0, []
    while True:
        chunk = await hub.command(name, "file.get", {"path": path, "offset": offset, "length": CHUNK})
        data = base64.b64decode(chunk["data"])
        parts.append(data)
        offset += len(data)
        if chunk["eof"]:
            break
    content = b"".join(parts)
    if hashlib.sha256(content).hexdigest() != chunk["sha256"]:
        raise Conflict("the file changed while it was read; try again", code="checksum_mismatch")
    await asyncio.to_thread(
        record_alone, ctx.store, principal, "agent.file_get", name, "ok", {"path": path, "size": len(content)}
    )
    return Response(content, media_type="application/octet-stream", headers={"X-Content-SHA256": chunk["sha256"]})
