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
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from robofleet.agents import roster
from robofleet.agents.hub import LOCAL, AgentHub
from robofleet.agents.output import output_rows
from robofleet.auth.audit import record_alone
from robofleet.auth.principal import Principal
from robofleet.auth.tokens import authenticate_token, cached_principal
from robofleet.errors import Conflict, RobofleetError, StoreUnavailable
from robofleet.store import Store
from robofleet.store.text import NUL
from robofleet.web.context import context_of

log = logging.getLogger(__name__)
router = APIRouter()
SILENT_HEARTBEATS = 3
RECHECK_SECONDS = 1.0  # at most this often a full check of a connection's token, when the cache cannot answer


class Credentials:
    """The token a connection was opened with, checked again before each message the agent sends: a revoked or
    expired token, a disabled user or a lost agents:connect ends the connection (4401) at its next heartbeat at
    the latest. Free while nothing about users, roles or tokens changed (the principal cache answers)."""

    def __init__(self, store: Store, secret: str, source_ip: str) -> None:
        self.store, self.secret, self.source_ip = store, secret, source_ip
        self.checked_at = time.monotonic()

    async def refusal(self, *, now: bool = False) -> str | None:
        """Why the token may no longer connect, or None. `now`: a full check even if one was made a moment ago."""
        principal = cached_principal(self.store, self.secret, self.source_ip)
        if principal is None:
            if not now and time.monotonic() - self.checked_at < RECHECK_SECONDS:
                return None
            self.checked_at = time.monotonic()
            try:
                principal = await run_in_threadpool(authenticate_token, self.store, self.secret, self.source_ip)
            except StoreUnavailable:
                return None  # who the agent is cannot have changed while nothing could be written
            except RobofleetError as exc:
                return exc.message
        return None if principal.can("agents:connect") else "this token may no longer connect as an agent"


class RemoteLink:
    def __init__(self, hub: AgentHub, name: str, socket: WebSocket, credentials: Credentials) -> None:
        self.hub = hub
        self.name = name
        self.socket = socket
        self.credentials = credentials

    async def send(self, command_id: str, name: str, args: dict[str, Any], within: float) -> dict[str, Any]:
        # A command carries secrets (a robot's env, a run's token): never to a connection whose token is gone.
        refused = await self.credentials.refusal(now=True)
        if refused is not None:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self.socket.close(code=4401, reason=refused[:120])
            raise Conflict(f"the agent {self.name!r} is offline: {refused}", code="agent_offline")
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


# The name rule of auth.schemas.AgentName: a name appears in paths (/agents/{name}) and log sources (agent:<name>).
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
UNBOUND = "this token names no agent: make one with robofleet token create --user <agent user> --agent <name>"


class Malformed(ValueError):
    """A frame that is not a JSON object (binary, not JSON, nested too deeply, a list…)."""


async def receive_object(socket: WebSocket, within: float) -> dict[str, Any]:
    """The next frame as a JSON object; Malformed when it is not one, TimeoutError after `within` seconds,
    WebSocketDisconnect when the agent went away."""
    async with asyncio.timeout(within):
        message = await socket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if not isinstance(text, str):
        raise Malformed("a message must be a text frame holding a JSON object")
    try:
        decoded = json.loads(text)
    except RecursionError:
        raise Malformed("the message is nested too deeply") from None
    except ValueError as exc:
        raise Malformed(f"the message is not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise Malformed("a message must be a JSON object")
    return decoded


def hello_refusal(hello: dict[str, Any], principal: Principal, hub: AgentHub) -> tuple[int, str] | None:
    """Why this hello may not connect (close code, reason), or None. A token bound to an agent name connects as
    that name only, and never displaces a live connection of the name held by another user."""
    name = hello.get("name")
    if hello.get("type") != "hello" or not isinstance(name, str) or not name:
        return 4400, "expected a hello with a name"
    if name == LOCAL:
        return 4403, "'local' is the embedded agent's name"
    if not AGENT_NAME.fullmatch(name):
        return 4400, "an agent name is 1-64 letters, digits, _ . - (starting with a letter or digit)"
    if principal.agent is None:
        return 4403, UNBOUND
    if name != principal.agent:
        return 4403, f"this token connects as the agent {principal.agent} only"
    if hub.held_by_another(name, principal.username) is not None:
        return 4403, f"the agent {name} is connected as another user"
    for key in ("runs", "results"):
        if not isinstance(hello.get(key, []), list) or not all(isinstance(x, dict) for x in hello.get(key, [])):
            return 4400, f"a hello's {key} must be a list of objects"
    return None


@router.websocket("/api/v1/agents/connect")
async def connect(socket: WebSocket) -> None:
    """Agents connect here with `Authorization: Bearer <token>`, a token of a user with agents:connect that is
    bound to the agent's name (`robofleet token create --user U --agent NAME`)."""
    context = context_of(socket)  # type: ignore[arg-type]
    hub = context.hub
    header = socket.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    # Accepted before the checks, so a refused agent learns why from the close code and reason.
    await socket.accept()
    if hub is None or not context.ready:
        await socket.close(code=1013, reason="the orchestrator is not ready")
        return
    credentials = Credentials(context.store, secret.strip(), socket.client.host if socket.client else "")
    try:
        principal = await run_in_threadpool(
            authenticate_token, context.store, credentials.secret, credentials.source_ip
        )
    except RobofleetError as exc:
        await socket.close(code=4401, reason=exc.message[:120])
        return
    if scheme.lower() != "bearer" or not principal.can("agents:connect"):
        why = "this token may not connect as an agent (agents:connect)"
        await run_in_threadpool(record_alone, context.store, principal, "agent.connect", "-", "denied", {"reason": why})
        await socket.close(code=4403, reason=why)
        return
    try:
        hello = await receive_object(socket, 30)
    except (TimeoutError, WebSocketDisconnect, Malformed):
        await socket.close(code=4400, reason="expected a hello (a JSON object)")
        return
    refusal = hello_refusal(hello, principal, hub)
    if refusal is not None:
        code, why = refusal
        asked = str(hello.get("name"))[:64].replace(NUL, "\\u0000")  # the audit's store cannot hold a NUL
        log.warning("agent connection of %s as %r refused: %s", principal.username, asked, why)
        details = {"reason": why}
        await run_in_threadpool(record_alone, context.store, principal, "agent.connect", asked, "denied", details)
        await socket.close(code=code, reason=why[:120])
        return
    name = str(hello["name"])
    info = {key: hello.get(key) for key in ("host", "os_user", "os", "python", "capabilities")}
    heartbeat = context.settings.agents.heartbeat_seconds
    offline_after = SILENT_HEARTBEATS * heartbeat
    inbox = hub.inbox(name, str(hello.get("instance", "")))
    welcome = {"heartbeat_seconds": heartbeat, "offline_after_seconds": offline_after, "acked": inbox.last_seq}
    try:
        await socket.send_json({"type": "welcome", **welcome})
    except (RuntimeError, OSError, WebSocketDisconnect):
        return
    try:
        state = hub.connect(
            name,
            RemoteLink(hub, name, socket, credentials),
            {**info, "principal": principal.username},
            user=principal.username,
        )
    except Conflict as exc:  # another user's connection of the name came in while the welcome went out
        await socket.close(code=4403, reason=exc.message[:120])
        return
    log.info("agent %s connected from %s", name, socket.client.host if socket.client else "?")
    reason, code = "", 1011
    store = context.store
    recorded_seen = state.last_seen_at
    try:
        await keep_record(roster.connected, store, name, principal.username, info)
        await hub.agent_back(name, await own_runs(hub, name, hello.get("runs", [])))
        for result in hello.get("results", []):
            hub.resolve(str(result["id"]), result["outcome"], agent=name)
        for command in hub.unanswered(name):
            await socket.send_json({"type": "command", **command})
        while True:
            try:
                message = await receive_object(socket, offline_after)
            except TimeoutError:
                reason = f"no heartbeat for {offline_after:g} s"
                break
            if hub.agents.get(name) is not state:
                reason = "a newer connection of this agent replaced this one"
                break
            refused = await credentials.refusal()
            if refused is not None:
                reason, code = refused, 4401
                break
            state.last_seen_at = datetime.now(UTC)
            if roster.due_for_seen(recorded_seen, state.last_seen_at):
                recorded_seen = state.last_seen_at
                await keep_record(roster.seen, store, name)
            kind = message.get("type")
            if kind == "result":
                hub.resolve(str(message["id"]), message["outcome"], agent=name)
            elif kind == "heartbeat":
                state.stats = message.get("stats", {})
            elif kind == "sessions_changed":  # a hint only: the sync it wakes asks the agent what changed
                hub.sessions_changed(name)
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
            await keep_record(roster.left, store, name, reason)
        if reason:
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await socket.close(code=code, reason=reason[:120])


async def keep_record(write: Callable[..., None], *args: Any) -> None:
    """A change of the roster (agents/roster.py), in a thread. A store that fails it (away, mostly) loses the record
    (logged), never the connection: the agent is live in the hub all the same, and its next heartbeat or connection
    records it."""
    try:
        await run_in_threadpool(write, *args)
    except Exception as exc:  # whatever the store says, the connection stands
        reason = exc.message if isinstance(exc, RobofleetError) else f"{type(exc).__name__}: {exc}"
        log.warning("agent %s: the store did not take %s (%s)", args[1], write.__name__, reason[:300])


async def handle(hub: AgentHub, agent: str, message: dict[str, Any]) -> None:
    """Output into the log store, or a run's exit to the robots service; done once it is durable. Lines the store
    has already (sent again by an agent that restarted) are left out, and so is whatever the message says about a
    run of another agent (logged): an agent speaks for its own runs only, and its runs' lines go out as their
    robot's, whatever label it gave them."""
    if message.get("type") == "exited":
        run_id = str(message["run_id"])
        if await hub.run_agent(run_id) != agent:
            log.warning("agent %s reported the end of run %r, which is not its own: ignored", agent, run_id[:40])
            return
        await hub.run_exited(agent, run_id, message.get("outcome", {}))
    elif message.get("type") == "output":
        lines = hub.stored_output.unseen(agent, [line for line in message.get("lines", []) if isinstance(line, dict)])
        foreign = {run_id for run_id in {str(line["run_id"]) for line in lines} if await hub.run_agent(run_id) != agent}
        if foreign:
            log.warning(
                "agent %s sent output of runs that are not its own (%s): ignored",
                agent,
                str(sorted(foreign))[:200],
            )
            lines = [line for line in lines if str(line["run_id"]) not in foreign]
        # A line's source is its run's robot, whatever label the agent gave it.
        robots = {run_id: await hub.run_robot(run_id) for run_id in {str(line["run_id"]) for line in lines}}
        labelled = [{**line, "label": robots[str(line["run_id"])] or line.get("label")} for line in lines]
        rows = output_rows(labelled, agent)
        if rows:
            await hub.store_output(rows)
            hub.stored_output.stored(agent, lines)


async def own_runs(hub: AgentHub, agent: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs of a hello's list that were started on `agent`: it adopts, pauses or resumes no other's."""
    kept = []
    for run in runs:
        if await hub.run_agent(str(run.get("run_id"))) == agent:
            kept.append(run)
        else:
            log.warning("agent %s listed run %r, which is not its own: ignored", agent, str(run.get("run_id"))[:40])
    return kept
