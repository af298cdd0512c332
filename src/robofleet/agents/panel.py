"""The agent page: its machine, its processes, and for `agents:admin` a remote shell and file transfer."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from robofleet.agents.api import audited_command, hub_of
from robofleet.auth.principal import Principal
from robofleet.errors import RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect, templates

router = APIRouter(prefix="/panel/agents", include_in_schema=False)


@router.get("/{name}")
async def agent_page(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("agents:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    hub = hub_of(ctx)
    error = None
    agent: dict[str, Any] = {"name": name}
    system: dict[str, Any] = {}
    processes: list[dict[str, Any]] = []
    try:
        agent = hub.require(name).public()
        system = await hub.command(name, "system.info", {})
        listing = await hub.command(name, "process.list", {})
        processes = sorted(listing["processes"], key=lambda p: p.get("rss") or 0, reverse=True)[:200]
    except RobofleetError as exc:
        error = exc.message
    return page(
        request,
        "agent.html",
        principal,
        section="fleet",
        agent=agent,
        system=system,
        processes=processes,
        error=error,
        admin=principal.can("agents:admin"),
    )


@router.post("/{name}/shell")
async def agent_shell(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("agents:admin", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = await request.form()
    command = str(form.get("command", ""))[:10_000]
    try:
        if not command.strip():
            raise RobofleetError("type a command first")
        args = {"command": command, "timeout": 60, "max_output": 64_000}
        result = await audited_command(
            ctx,
            principal,
            "agent.shell",
            name,
            {"command": command[:2000]},
            hub_of(ctx).command(name, "shell.run", args, within=70),
        )
        outcome = {"command": command, **result, "error": None}
    except RobofleetError as exc:
        outcome = {"command": command, "error": exc.message}
    return templates.TemplateResponse(request, "agent_shell_result.html", outcome)


@router.post("/{name}/upload")
async def agent_upload(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("agents:admin", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    form = await request.form()
    upload, path = form.get("file"), str(form.get("path", ""))
    if not isinstance(upload, UploadFile) or not path:
        return redirect(f"/panel/agents/{name}", error="Choose a file and a destination path.")
    content = await upload.read()
    digest = hashlib.sha256(content).hexdigest()
    args = {"path": path, "offset": 0, "data": base64.b64encode(content).decode(), "sha256": digest}
    try:
        await audited_command(
            ctx,
            principal,
            "agent.file_put",
            name,
            {"path": path, "size": len(content)},
            hub_of(ctx).command(name, "file.put", args),
        )
    except RobofleetError as exc:
        return redirect(f"/panel/agents/{name}", error=exc.message)
    return redirect(f"/panel/agents/{name}", notice=f"Uploaded {len(content)} bytes to {path} (sha256 {digest[:12]}…).")
