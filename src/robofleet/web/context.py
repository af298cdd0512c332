"""What every request handler may reach: the settings, the store, and whether the store is ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from robofleet.settings.model import Settings
from robofleet.store import Store

if TYPE_CHECKING:
    from robofleet.activities.processor import Processor
    from robofleet.agents.hub import AgentHub
    from robofleet.agents.local import LocalAgent
    from robofleet.logs.service import LogService
    from robofleet.robots.service import RobotsService


@dataclass
class AppContext:
    settings: Settings
    store: Store
    ready: bool = False
    not_ready_reason: str = "the store has not been prepared yet"
    processor: Processor | None = None
    logs: LogService | None = None
    hub: AgentHub | None = None
    robots: RobotsService | None = None
    local_agent: LocalAgent | None = None


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


async def get_context(request: Request) -> AppContext:
    """The dependency form: async, so FastAPI does not spend a worker thread on every request for it."""
    return context_of(request)
