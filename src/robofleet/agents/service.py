"""What people do with agents, for both adapters (the API and the panel): see which are connected and their
machines, and administer a machine (a shell command, a file up or down). Each operation checks the caller's
permission and asks the agent through the hub; administration is audited, with its outcome, however it ends.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from robofleet.agents import roster
from robofleet.agents.hub import AgentHub
from robofleet.auth.audit import record_alone
from robofleet.auth.principal import Principal
from robofleet.errors import Conflict, Forbidden, RobofleetError, StoreUnavailable, TooLarge
from robofleet.settings.model import Settings
from robofleet.store import Store

CHUNK = 1024 * 1024  # bytes of a file per command: a message of a few MiB at most, whatever the file's size
# The agent ends a shell command at its timeout; its answer gets this long on top to come back.
SHELL_ANSWER_SECONDS = 10.0
# What of a process anyone with agents:read sees (a process's command line and environment need agents:admin).
WITHOUT_COMMAND_LINE = frozenset({"pid", "ppid", "name", "user", "status", "cpu_percent", "rss", "started"})
T = TypeVar("T")


class Context(Protocol):
    """What the service needs of the orchestrator (robofleet.orchestrator.Orchestrator)."""

    hub: AgentHub | None
    store: Store
    settings: Settings


@dataclass(frozen=True)
class Download:
    content: bytes
    sha256: str


class AgentsService:
    def __init__(self, hub: AgentHub, store: Store, *, max_file_bytes: int) -> None:
        self.hub = hub
        self.store = store
        self.max_file_bytes = max_file_bytes

    @classmethod
    def of(cls, ctx: Context) -> AgentsService:
        """The service of this orchestrator; StoreUnavailable until its services have started."""
        if ctx.hub is None:
            raise StoreUnavailable("agents are not available yet: the store is not ready")
        return cls(ctx.hub, ctx.store, max_file_bytes=ctx.settings.server.max_body_bytes)

    # ---- seeing (agents:read) -------------------------------------------------------------------------------

    async def list_agents(self, principal: Principal) -> list[dict[str, Any]]:
        """Every agent known: the connected ones (`"online": true`, as `AgentState.public()` says), then those
        that connected once and are not connected now (`"online": false`, `offline_since`, `offline_reason`)."""
        principal.require("agents:read")
        return await asyncio.to_thread(roster.overview, self.store, self.hub)

    async def get_agent(self, principal: Principal, name: str) -> dict[str, Any]:
        """The agent as `list_agents` shows it; Conflict (agent_offline) for a name that never connected."""
        principal.require("agents:read")
        agent = await asyncio.to_thread(roster.one, self.store, self.hub, name)
        if agent is None:
            raise Conflict(f"the agent {name!r} is offline", details={"agent": name}, code="agent_offline")
        return agent

    async def system_info(self, principal: Principal, name: str) -> dict[str, Any]:
        """CPU, memory, disk, uptime and logged-in users of the agent's machine; the hub's errors when the agent
        is offline, silent or refuses."""
        principal.require("agents:read")
        return dict(await self.hub.command(name, "system.info", {}))

    async def processes(self, principal: Principal, name: str) -> dict[str, Any]:
        """{"processes": every process of the machine, "runs": the agent's runs}; the hub's errors as above.
        A process's command line ("cmdline") only for agents:admin: programs pass secrets on theirs (an agent's
        token once did), so a viewer sees each process's pid, name, user, status, memory and start only."""
        principal.require("agents:read")
        listing = dict(await self.hub.command(name, "process.list", {}))
        if not principal.can("agents:admin"):
            listing["processes"] = [
                {key: value for key, value in process.items() if key in WITHOUT_COMMAND_LINE}
                for process in listing.get("processes", [])
            ]
        return listing

    # ---- administering (agents:admin, audited) ---------------------------------------------------------------

    async def shell(
        self,
        principal: Principal,
        name: str,
        command: str,
        *,
        time_limit: float = 60.0,
        max_output: int = 64_000,
        cwd: str | None = None,
    ) -> dict[str, Any]:
        """Run `command` in a shell on the agent's machine, ended after `time_limit` seconds, its output capped
        at `max_output` bytes: {"exit_code", "timed_out", "stdout", "stderr", "truncated", "seconds"}. Audited as
        agent.shell with the command line."""
        args = {"command": command, "timeout": time_limit, "max_output": max_output, "cwd": cwd}

        async def run() -> dict[str, Any]:
            return dict(await self.hub.command(name, "shell.run", args, within=time_limit + SHELL_ANSWER_SECONDS))

        return await self._administer(principal, "agent.shell", name, {"command": command[:2000]}, run)

    async def put_file(self, principal: Principal, name: str, path: str, content: bytes) -> dict[str, Any]:
        """Write `content` to `path` on the agent, in chunks, checked with sha256 at the end: {"path", "size",
        "sha256"}. TooLarge over the orchestrator's body limit; CommandFailed (forbidden_path, too_large,
        checksum_mismatch…) when the agent refuses. Audited as agent.file_put."""
        digest = hashlib.sha256(content).hexdigest()

        async def send() -> dict[str, Any]:
            if len(content) > self.max_file_bytes:
                raise TooLarge(
                    f"the file is larger than {self.max_file_bytes} bytes", details={"max_bytes": self.max_file_bytes}
                )
            result: dict[str, Any] = {}
            for offset in range(0, max(len(content), 1), CHUNK):
                chunk = content[offset : offset + CHUNK]
                last = offset + CHUNK >= len(content)
                args = {
                    "path": path,
                    "offset": offset,
                    "data": base64.b64encode(chunk).decode(),
                    **({"sha256": digest} if last else {}),
                }
                result = dict(await self.hub.command(name, "file.put", args))
            return result

        details = {"path": path, "size": len(content), "sha256": digest}
        return await self._administer(principal, "agent.file_put", name, details, send)

    async def get_file(self, principal: Principal, name: str, path: str) -> Download:
        """The file at `path` on the agent, read in chunks; Conflict (checksum_mismatch) when it changed while it
        was read, CommandFailed when the agent refuses. Audited as agent.file_get."""

        async def fetch() -> Download:
            offset, parts = 0, []
            while True:
                chunk = await self.hub.command(name, "file.get", {"path": path, "offset": offset, "length": CHUNK})
                data = base64.b64decode(chunk["data"])
                parts.append(data)
                offset += len(data)
                if chunk["eof"]:
                    break
            content = b"".join(parts)
            if hashlib.sha256(content).hexdigest() != chunk["sha256"]:
                raise Conflict("the file changed while it was read; try again", code="checksum_mismatch")
            details["size"] = len(content)  # known only now: the audit record of a success carries it
            return Download(content, chunk["sha256"])

        details: dict[str, Any] = {"path": path}
        return await self._administer(principal, "agent.file_get", name, details, fetch)

    async def _administer(
        self,
        principal: Principal,
        action: str,
        target: str,
        details: dict[str, Any],
        work: Callable[[], Awaitable[T]],
    ) -> T:
        """Check agents:admin, do the work and audit it, whichever way it ends. Not `auth.audit.audited`: that
        holds a store transaction open, and an agent may take a minute to answer; each record here is a short
        transaction of its own, in a thread, so the event loop never waits on the store."""
        try:
            principal.require("agents:admin")
            result = await work()
        except RobofleetError as exc:
            outcome = "denied" if isinstance(exc, Forbidden) else "failed"
            await asyncio.to_thread(
                record_alone, self.store, principal, action, target, outcome, {**details, "error": exc.message}
            )
            raise
        await asyncio.to_thread(record_alone, self.store, principal, action, target, "ok", details)
        return result
