"""Remote agents: the WebSocket at /api/v1/agents/connect, and the link that carries commands over it.

Every command has an id. A command whose connection drops before its result came is sent again, with the same
id, when the agent is back; the agent runs each id once and answers a repeat with the first result. Results
and run exits the agent could not deliver while away come with its next hello.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from robofleet.agents.hub import AgentHub
from robofleet.auth.tokens import authenticate_token
from robofleet.errors import RobofleetError
from robofleet.logs.ingest import Row
from robofleet.web.context import context_of

log = logging.getLogger(__name__)
router = APIRouter()
NAME_LIMIT = 64


class RemoteLink:
    def __init__(self, hub: AgentHub, name: str, socket: WebSocket) -> None:
        self.hub = hub
        self.name = name
        self.socket = socket

    async def send(self, command_id: str, name: str, args: dict[str, Any], within: float) -> dict[str, Any]:
        future = self.hub.pending_for(self.name, command_id, name, args)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.socket.send_json({"type": "command", "id": command_id, "name": name, "args": args})
        try:
            return await asyncio.wait_for(asyncio.shield(future), within)
        finally:
            if not future.done():
                future.cancel()  # the caller gave up: do not send it again on a reconnect
            self.hub.pending.pop(command_id, None)


@router.websocket("/api/v1/agents/connect")
async def connect(socket: WebSocket) -> None:
    """Agents connect here with `Authorization: Bearer <token of a user with agents:connect>`."""
    context = context_of(socket)  # type: ignore[arg-type]
    hub, logs = context.hub, context.logs
    header = socket.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    # Accepted before the checks, so a refused agent learns why from the close code and reason.
    await socket.accept()
    if hub is None or logs is None or not context.ready:
        await socket.close(code=1013, reason="the orchestrator is not ready")
        return
    try:
        principal = await run_in_threadpool(
            authenticate_token, context.store, secret.strip(), socket.client.host if socket.client else ""
        )
    except RobofleetError as exc:
        await socket.close(code=4401, reason=exc.message[:120])
        return
    if scheme.lower() != "bearer" or not principal.can("agents:connect"):
        await socket.close(code=4403, reason="this token may not connect as an agent (agents:connect)")
        return
    try:
        hello = await asyncio.wait_for(socket.receive_json(), 30)
    except (TimeoutError, WebSocketDisconnect, ValueError):
        await socket.close(code=4400, reason="expected a hello")
        return
    name = str(hello.get("name", ""))[:NAME_LIMIT]
    if hello.get("type") != "hello" or not name or name == "local":
        await socket.close(code=4400, reason="a hello needs a name (and 'local' is the embedded agent's)")
        return
    info = {key: hello.get(key) for key in ("host", "os_user", "os", "python", "capabilities")}
    hub.connect(name, RemoteLink(hub, name, socket), {**info, "principal": principal.username})
    if context.robots is not None:
        await context.robots.agent_back(name, list(hello.get("runs", [])))
    log.info("agent %s connected from %s", name, socket.client.host if socket.client else "?")
    try:
        for result in hello.get("results", []):
            hub.resolve(result["id"], result["outcome"])
        for exited in hello.get("exited", []):
            await hub.run_exited(name, str(exited.pop("run_id")), exited)
        for command in hub.unanswered(name):
            await socket.send_json({"type": "command", **command})
        while True:
            message = await socket.receive_json()
            kind = message.get("type")
            if kind == "result":
                hub.resolve(message["id"], message["outcome"])
            elif kind == "exited":
                await hub.run_exited(name, str(message["run_id"]), message.get("outcome", {}))
            elif kind == "output":
                now = datetime.now(UTC)
                rows = [
                    Row(
                        now,
                        30 if line["stream"] == "stderr" else 20,
                        f"robot:{line['label'] or 'unknown'}",
                        str(line["run_id"]),
                        str(line["line"]),
                        {"stream": line["stream"], "agent": name},
                        False,
                    )
                    for line in message.get("lines", [])
                ]
                if rows:
                    logs.write(rows)
            elif kind == "heartbeat":
                state = hub.agents.get(name)
                if state is not None:
                    state.stats = message.get("stats", {})
                    state.last_seen_at = datetime.now(UTC)
    except (WebSocketDisconnect, json.JSONDecodeError, KeyError, TypeError, ValueError):
        pass
    finally:
        current = hub.agents.get(name)
        if current is not None and isinstance(current.link, RemoteLink) and current.link.socket is socket:
            hub.disconnect(name)
            log.info("agent %s disconnected", name)
            if context.robots is not None:
                context.robots.watch_gone(name, context.settings.agents.grace_seconds)
