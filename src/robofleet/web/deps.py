"""What routes share: paging parameters and each domain's service as a typed dependency (503 until it started)."""

from __future__ import annotations

from typing import Annotated

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


def _not_ready(what: str) -> StoreUnavailable:
    return StoreUnavailable(f"{what} not available yet: the store is not ready")


def robots_of(ctx: Orchestrator) -> RobotsService:
    if ctx.robots is None:
        raise _not_ready("robots are")
    return ctx.robots


def logs_of(ctx: Orchestrator) -> LogService:
    if ctx.logs is None:
        raise _not_ready("logs are")
    return ctx.logs


def processor_of(ctx: Orchestrator) -> Processor:
    if ctx.processor is None:
        raise _not_ready("activities are")
    return ctx.processor


def hub_of(ctx: Orchestrator) -> AgentHub:
    if ctx.hub is None:
        raise _not_ready("agents are")
    return ctx.hub


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
