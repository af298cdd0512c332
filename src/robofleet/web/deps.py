"""What routes share: paging parameters and each domain's service as a typed dependency (503 until it started)."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Query

from robofleet.activities.processor import Processor
from robofleet.agents.hub import AgentHub
from robofleet.errors import StoreUnavailable
from robofleet.logs.service import LogService
from robofleet.orchestrator import Orchestrator
from robofleet.robots.service import RobotsService
from robofleet.web.context import get_context

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the page before")]
Context = Annotated[Orchestrator, Depends(get_context)]
T = TypeVar("T")


def _started(service: T | None, what: str) -> T:
    if service is None:
        raise StoreUnavailable(f"{what} not available yet: the store is not ready")
    return service


def robots_of(ctx: Orchestrator) -> RobotsService:
    return _started(ctx.robots, "robots are")


def logs_of(ctx: Orchestrator) -> LogService:
    return _started(ctx.logs, "logs are")


def processor_of(ctx: Orchestrator) -> Processor:
    return _started(ctx.processor, "activities are")


def hub_of(ctx: Orchestrator) -> AgentHub:
    return _started(ctx.hub, "agents are")


# The dependency forms: async, so FastAPI spends no worker thread on them.
async def robots_service(ctx: Context) -> RobotsService:
    return robots_of(ctx)


async def logs_service(ctx: Context) -> LogService:
    return logs_of(ctx)


async def activity_processor(ctx: Context) -> Processor:
    return processor_of(ctx)


async def agent_hub(ctx: Context) -> AgentHub:
    return hub_of(ctx)


Robots = Annotated[RobotsService, Depends(robots_service)]
Logs = Annotated[LogService, Depends(logs_service)]
Activities = Annotated[Processor, Depends(activity_processor)]
Hub = Annotated[AgentHub, Depends(agent_hub)]
