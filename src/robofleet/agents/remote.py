"""Remote agents: the WebSocket at /api/v1/agents/connect, and the link that carries commands over it.

Every command has an id. A command whose connection drops before its result came is sent again, with the same
id, when the agent is back; the agent runs each id once and answers a repeat with the first result. Results the
agent could not deliver while away come with its next hello. Output and run exits carry a sequence number: each
is handled once, stored, then acknowledged, and a copy sent again after a reconnect is only acknowledged. An
agent silent for three heartbeats (`agents.heartbeat_seconds`, told to it in the welcome) is offline.
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
from robofleet.agents.output import output_rows
from robofleet.auth.tokens import authenticate_token
from robofleet.errors import RobofleetError, StoreUnavailable
from robofleet.web.context import context_of

log = logging.getLogger(__name__)
router = APIRouter()
NAME_LIMIT = 64
SILENT_HEARTBEATS = 3


class RemoteLink:
    def __init__(self, hub: AgentHub, name: str, socket: WebSocket) -> None:
        self.hub = hub
        self.name = name
        self.socket = socket

    async def send(self, command_id: str, name: str, args: dict[str, Any], within: float) -> dict[str, Any]:
        future = self.hub.pending_for(self.name, command_id, name, args)

        async def deliver() -> dict[str, Any]:
            # A send into a connection that died unnoticed can wait on a full buffer: `within` bounds it too.
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.socket.send_json({"type": "command", "id": command_id, "name": name, "args": args})
            return await asyncio.shield(future)

        try:
            return await asyncio.wait_for(deliver(), within)
        finally:
            if not future.done():
                future.cancel()  # the caller gave up: do not send it again on a reconnect
            self.hub.pending.pop(command_id, None)


@router.websocket("/api/v1/agents/connect")
async def connect(socket: WebSocket) -> None:
    """Agents connect here with `Authorization: Bearer <token of a user with agents:connect>`."""
    context = context_of(socket)  # type: ignore[arg-type]
    hub = context.hub
    header = socket.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    # Accepted before the checks, so a refused agent learns why from the close code and reason.
    await socket.accept()
    if hub is None or not context.ready:
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
    heartbeat = context.settings.agents.heartbeat_seconds
    offline_after = SILENT_HEARTBEATS * heartbeat
    inbox = hub.inbox(name, str(hello.get("instance", "")))
    welcome = {"heartbeat_seconds": heartbeat, "offline_after_seconds": offline_after, "acked": inbox.last_seq}
    try:
        await socket.send_json({"type": "welcome", **welcome})
    except (RuntimeError, OSError, WebSocketDisconnect):
        return
    state = hub.connect(name, RemoteLink(hub, name, socket), {**info, "principal": principal.username})
    log.info("agent %s connected from %s", name, socket.client.host if socket.client else "?")
    reason = ""
    try:
        await hub.agent_back(name, list(hello.get("runs", [])))
        for result in hello.get("results", []):
            hub.resolve(result["id"], result["outcome"])
        for command in hub.unanswered(name):
            await socket.send_json({"type": "command", **command})
        while True:
            try:
                message = await asyncio.wait_for(socket.receive_json(), offline_after)
            except TimeoutError:
                reason = f"no heartbeat for {offline_after:g} s"
                break
            if hub.agents.get(name) is not state:
                reason = "a newer connection of this agent replaced this one"
                break
            state.last_seen_at = datetime.now(UTC)
            kind = message.get("type")
            if kind == "result":
                hub.resolve(message["id"], message["outcome"])
            elif kind == "heartbeat":
                state.stats = message.get("stats", {})
            elif kind in ("output", "exited") and "seq" not in message:
                await handle(hub, name, message)  # an agent from before sequence numbers
            elif kind in ("output", "exited"):
                seq = int(message["seq"])
                async with inbox.lock:
                    if seq > inbox.last_seq:
                        try:
                            await handle(hub, name, message)
                        except StoreUnavailable:
                            raise  # a passing failure: unacknowledged, the message comes again after a reconnect
                        except (RobofleetError, KeyError, TypeError, ValueError) as exc:
                            # Acknowledged all the same: sent again, it would be refused again, for ever.
                            log.warning("agent %s: message %d (%s) dropped: %s", name, seq, kind, exc)
                        inbox.last_seq = seq
                await socket.send_json({"type": "ack", "seq": seq})
    except WebSocketDisconnect:
        pass
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        reason = f"a malformed message ({type(exc).__name__}: {exc})"
    except Exception:
        # Not acknowledged, so the agent sends it again on its next connection.
        log.exception("agent %s: a message could not be handled now; disconnecting it", name)
        reason = "the orchestrator could not handle a message now"
    finally:
        if hub.agents.get(name) is state:
            hub.disconnect(name)
            log.info("agent %s disconnected%s", name, f": {reason}" if reason else "")
            hub.agent_gone(name)
        if reason:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await socket.close(code=1011, reason=reason[:120])


async def handle(hub: AgentHub, agent: str, message: dict[str, Any]) -> None:
    """Output into the log store, or a run's exit to the robots service; done once it is durable. Lines the store
    has already (sent again by an agent that restarted) are left out."""
    if message.get("type") == "exited":
        await hub.run_exited(agent, str(message["run_id"]), message.get("outcome", {}))
    elif message.get("type") == "output":
        lines = hub.stored_output.unseen(agent, list(message.get("lines", [])))
        rows = output_rows(lines, agent)
        if rows:
            await hub.store_output(rows)
            hub.stored_output.stored(agent, lines)
