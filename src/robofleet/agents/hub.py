"""The orchestrator's side of its agents: which are connected, and commands to them with their outcome.

An agent is reached through a link: `LocalLink` runs the embedded agent's worker in this process; a remote
agent's link carries the same commands over its WebSocket. Services only ever call `AgentHub.command`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from robofleet.agents.processes import is_run_id
from robofleet.agents.worker import Worker
from robofleet.errors import Conflict, RobofleetError, StoreUnavailable
from robofleet.logs.ingest import Row
from robofleet.store.base import utcnow

log = logging.getLogger(__name__)
LOCAL = "local"
REMEMBERED_RUNS = 10_000


class AgentLink(Protocol):
    async def send(self, command_id: str, name: str, args: dict[str, Any], within: float) -> dict[str, Any]: ...


class CommandTimeout(RobofleetError):
    status = 504
    code = "agent_timeout"


class CommandFailed(RobofleetError):
    status = 422
    code = "command_failed"


@dataclass
class AgentState:
    name: str
    link: AgentLink
    info: dict[str, Any]
    user: str | None = None  # the user whose token connected it (None: the embedded agent)
    connected_at: datetime = field(default_factory=utcnow)
    last_seen_at: datetime = field(default_factory=utcnow)
    stats: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "online": True,
            "connected": True,
            "state": "online",
            "offline_since": None,
            "offline_reason": None,
            "connected_at": self.connected_at,
            "last_seen_at": self.last_seen_at,
            **{k: v for k, v in self.info.items() if k != "runs"},
            "stats": self.stats,
        }


RunExited = Callable[[str, str, dict[str, Any]], Awaitable[None]]
AgentBack = Callable[[str, list[dict[str, Any]]], Awaitable[None]]
RunsVanished = Callable[[str, set[str], str], Awaitable[None]]
StoreOutput = Callable[[list[Row]], Awaitable[None]]
RunFact = Callable[[str], str | None]


@dataclass
class HubListeners:
    """What the hub tells the services above it (wired once by the composition root, robofleet/orchestrator.py):
    agents never import the robots or logs services, they report through these."""

    run_exited: RunExited | None = None  # (agent, run id, outcome): a robot process ended
    agent_back: AgentBack | None = None  # (agent, its runs as it reports them): an agent said hello
    agent_gone: Callable[[str], None] | None = None  # an agent disconnected: its grace period starts
    runs_vanished: RunsVanished | None = None  # (agent, run ids it knows, reason): an agent started afresh
    store_output: StoreOutput | None = None  # robot output lines as log rows, durable when it returns
    run_agent: RunFact | None = None  # (run id) the agent the run was started on; None for no such run (blocks)
    run_robot: RunFact | None = None  # (run id) the robot the run is of; None for no such run (blocks)
    sessions_changed: Callable[[str], None] | None = None  # (agent) its sessions changed: sync them now (a hint)


@dataclass
class Inbox:
    """What one agent process sent that must count once (its robots' output, their exits), by sequence number.
    It outlives connections: a message sent again after a reconnect is recognised and only acknowledged."""

    instance: str
    last_seq: int = 0
    # Held from the check to the record, so an old connection's last messages and the new one's resent copies
    # cannot both pass. Kept for the agent's next process too, whose output is recognised by offset (StoredOutput).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class StoredOutput:
    """How far each run's output is stored, by agent, run and stream. An agent that restarted before it learnt
    that its lines were stored reads and sends them again: recognised by their offsets, they are dropped. Kept in
    memory only: after a restart of `serve`, lines stored just before it and not yet acknowledged come again."""

    def __init__(self) -> None:
        self._ends: OrderedDict[tuple[str, str], dict[str, int]] = OrderedDict()

    def unseen(self, agent: str, lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The lines not stored yet (lines without an offset, from an older agent, are all taken as new)."""
        fresh = []
        for line in lines:
            stored = self._ends.get((agent, str(line["run_id"])), {}).get(str(line["stream"]), -1)
            if not isinstance(line.get("offset"), int) or line["offset"] > stored:
                fresh.append(line)
        return fresh

    def stored(self, agent: str, lines: list[dict[str, Any]]) -> None:
        for line in lines:
            if isinstance(line.get("offset"), int):
                key = (agent, str(line["run_id"]))
                ends = self._ends.setdefault(key, {})
                ends[str(line["stream"])] = max(ends.get(str(line["stream"]), -1), line["offset"])
                self._ends.move_to_end(key)
        while len(self._ends) > REMEMBERED_RUNS:
            self._ends.popitem(last=False)


@dataclass
class PendingCommand:
    agent: str
    name: str
    args: dict[str, Any]
    future: asyncio.Future[dict[str, Any]]


class AgentHub:
    def __init__(self) -> None:
        self.agents: dict[str, AgentState] = {}
        self.pending: dict[str, PendingCommand] = {}
        self.inboxes: dict[str, Inbox] = {}
        self.stored_output = StoredOutput()
        self.listeners = HubListeners()
        # What never changes of a run, by run id: its agent and its robot.
        self._run_agents: OrderedDict[str, str] = OrderedDict()
        self._run_robots: OrderedDict[str, str] = OrderedDict()

    def inbox(self, agent: str, instance: str) -> Inbox:
        """The agent's inbox; a new one when `instance` says the agent is a new process, numbering from 1."""
        inbox = self.inboxes.get(agent)
        if inbox is None:
            inbox = self.inboxes[agent] = Inbox(instance)
        elif inbox.instance != instance:
            inbox = self.inboxes[agent] = Inbox(instance, lock=inbox.lock)
        return inbox

    def pending_for(
        self, agent: str, command_id: str, name: str, args: dict[str, Any]
    ) -> asyncio.Future[dict[str, Any]]:
        """The future of a command's outcome, kept across reconnects until its result comes or it times out."""
        pending = self.pending.get(command_id)
        if pending is None:
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            pending = self.pending[command_id] = PendingCommand(agent, name, args, future)
        return pending.future

    def resolve(self, command_id: str, outcome: dict[str, Any], *, agent: str | None = None) -> None:
        """The outcome of a pending command; with `agent`, only of a command sent to that agent (an agent cannot
        answer for another)."""
        pending = self.pending.get(command_id)
        if pending is None or (agent is not None and pending.agent != agent):
            return
        del self.pending[command_id]
        if not pending.future.done():
            pending.future.set_result(outcome)

    def unanswered(self, agent: str) -> list[dict[str, Any]]:
        """Commands sent to `agent` that got no result yet: sent again, same ids, when it reconnects."""
        return [
            {"id": command_id, "name": p.name, "args": p.args}
            for command_id, p in self.pending.items()
            if p.agent == agent and not p.future.done()
        ]

    def held_by_another(self, name: str, user: str | None) -> str | None:
        """The user of the live connection of `name` when it is not `user` (who then may not replace it)."""
        held = self.agents.get(name)
        return held.user if held is not None and held.user != user else None

    def connect(self, name: str, link: AgentLink, info: dict[str, Any], *, user: str | None = None) -> AgentState:
        """`name` is now reached through `link`, replacing a live connection of the same user (an agent that
        started again); Conflict (agent_taken) when another user's connection holds the name."""
        holder = self.held_by_another(name, user)
        if holder is not None:
            raise Conflict(
                f"the agent {name!r} is connected as another user", details={"agent": name}, code="agent_taken"
            )
        state = AgentState(name, link, info, user)
        self.agents[name] = state
        return state

    def disconnect(self, name: str) -> None:
        self.agents.pop(name, None)

    def require(self, name: str) -> AgentState:
        state = self.agents.get(name)
        if state is None:
            raise Conflict(f"the agent {name!r} is offline", details={"agent": name}, code="agent_offline")
        return state

    async def command(
        self, agent: str, name: str, args: dict[str, Any], *, within: float = 30, command_id: str | None = None
    ) -> Any:
        """The command's result; Conflict (409) when the agent is offline, CommandFailed when it refused."""
        state = self.require(agent)
        try:
            outcome = await state.link.send(command_id or uuid.uuid4().hex, name, args, within)
        except TimeoutError:
            raise CommandTimeout(
                f"agent {agent} did not answer {name} within {within:g} s", details={"agent": agent, "command": name}
            ) from None
        state.last_seen_at = utcnow()
        if not outcome.get("ok"):
            error = outcome.get("error", {})
            raise CommandFailed(
                f"agent {agent}: {error.get('message', 'the command failed')}",
                details={"agent": agent, "command": name, **error},
            )
        return outcome.get("result")

    async def stop(self) -> None:
        """The orchestrator stops: commands still waiting for an agent fail now instead of at their timeout, and
        every agent counts as gone (its robots keep running; they are adopted again at the next start)."""
        for command_id, pending in list(self.pending.items()):
            if not pending.future.done():
                pending.future.set_exception(
                    Conflict("the orchestrator is stopping", details={"command": pending.name}, code="stopping")
                )
            self.pending.pop(command_id, None)
        self.agents.clear()

    async def run_exited(self, agent: str, run_id: str, outcome: dict[str, Any]) -> None:
        if self.listeners.run_exited is not None:
            await self.listeners.run_exited(agent, run_id, outcome)

    async def agent_back(self, agent: str, runs: list[dict[str, Any]]) -> None:
        if self.listeners.agent_back is not None:
            await self.listeners.agent_back(agent, runs)

    def agent_gone(self, agent: str) -> None:
        if self.listeners.agent_gone is not None:
            self.listeners.agent_gone(agent)

    def sessions_changed(self, agent: str) -> None:
        """A hint from `agent` that a session of its changed state: what changed comes by the sync it wakes."""
        if self.listeners.sessions_changed is not None and agent in self.agents:
            self.listeners.sessions_changed(agent)

    async def runs_vanished(self, agent: str, known: set[str], reason: str) -> None:
        if self.listeners.runs_vanished is not None:
            await self.listeners.runs_vanished(agent, known, reason)

    async def run_agent(self, run_id: str) -> str | None:
        """The agent run `run_id` was started on; None for no such run. Asked of the store once per run: a run
        never moves to another agent."""
        return await self._of_run(self._run_agents, self.listeners.run_agent, run_id)

    async def run_robot(self, run_id: str) -> str | None:
        """The robot run `run_id` is of; None for no such run, or when no service says (a hub on its own)."""
        return await self._of_run(self._run_robots, self.listeners.run_robot, run_id)

    @staticmethod
    async def _of_run(known: OrderedDict[str, str], ask: RunFact | None, run_id: str) -> str | None:
        """What `ask` says of a run, remembered once known (the last REMEMBERED_RUNS runs)."""
        if run_id in known or ask is None or not is_run_id(run_id):
            return known.get(run_id)
        answer = await asyncio.to_thread(ask, run_id)
        if answer is not None:
            known[run_id] = answer
            while len(known) > REMEMBERED_RUNS:
                known.popitem(last=False)
        return answer

    async def store_output(self, rows: list[Row]) -> None:
        """Durable when this returns; raises what the store raised (the lines are then sent or read again)."""
        if self.listeners.store_output is None:
            raise StoreUnavailable("the log store is not started")
        await self.listeners.store_output(rows)


class LocalLink:
    """The embedded agent: the worker runs in this process, in a thread, so nothing blocks the event loop."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def send(self, command_id: str, name: str, args: dict[str, Any], within: float) -> dict[str, Any]:
        return await asyncio.wait_for(asyncio.to_thread(self.worker.execute, command_id, name, args), within)
