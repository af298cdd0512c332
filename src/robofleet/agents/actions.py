"""Agents as actions: `agents.list|get|system`, the same service functions as their routes with the same
permission, for schedules, the console and outside systems."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.agents.service import AgentsService


class AgentParams(Params):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def register(registry: Registry) -> None:
    @registry.register("agents.list", permission="agents:read")
    async def list_agents(ctx: ActionContext, params: Params) -> dict[str, Any]:
        """Every agent known: name, online or offline since when, host, OS user, OS, when each connected and was
        last heard of."""
        return {"items": await AgentsService.of(ctx.app).list_agents(ctx.principal)}

    @registry.register("agents.get", permission="agents:read", params=AgentParams)
    async def get_agent(ctx: ActionContext, params: AgentParams) -> dict[str, Any]:
        """One agent, online or offline (409 agent_offline for a name that never connected)."""
        return await AgentsService.of(ctx.app).get_agent(ctx.principal, params.name)

    @registry.register("agents.system", permission="agents:read", params=AgentParams)
    async def system(ctx: ActionContext, params: AgentParams) -> dict[str, Any]:
        """CPU, memory, disk, uptime and logged-in users of the agent's machine."""
        return await AgentsService.of(ctx.app).system_info(ctx.principal, params.name)
