"""The agent page: its machine, its processes, and for `agents:admin` a remote shell and file transfer. Each
route parses the form, asks agents/service.py and shapes the page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from robofleet.agents.service import AgentsService
from robofleet.auth.principal import Principal
from robofleet.errors import RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect, templates

router = APIRouter(prefix="/panel/agents", include_in_schema=False)
LISTED_PROCESSES = 200  # the largest by memory: a page, not the whole machine


@router.get("/{name}")
async def agent_page(
    name: str,
    request: Request,
    principal: Principal = Depends(Require("agents:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    agents = AgentsService.of(ctx)
    error = None
    agent: dict[str, Any] = {"name": name}
    system: dict[str, Any] = {}
    processes: list[dict[str, Any]] = []
    try:
        agent = await agents.get_agent(principal, name)
        if agent["online"]:  # an offline agent's machine cannot be asked: its page says since when it is away
            system = await agents.system_info(principal, name)
            listing = await agents.processes(principal, name)
            processes = sorted(listing["processes"], key=lambda p: p.get("rss") or 0, reverse=True)
            processes = processes[:LISTED_PROCESSES]
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
        result = await AgentsService.of(ctx).shell(principal, name, command)
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
    try:
        stored = await AgentsService.of(ctx).put_file(principal, name, path, content)
    except RobofleetError as exc:
        return redirect(f"/panel/agents/{name}", error=exc.message)
    notice = f"Uploaded {len(content)} bytes to {path} (sha256 {stored['sha256'][:12]}…)."
    return redirect(f"/panel/agents/{name}", notice=notice)
