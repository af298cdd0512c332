"""How a request handler reaches the orchestrator it serves (its settings, store, services)."""

from __future__ import annotations

from fastapi import Request

from robofleet.orchestrator import Orchestrator


def context_of(request: Request) -> Orchestrator:
    orchestrator: Orchestrator = request.app.state.context
    return orchestrator


async def get_context(request: Request) -> Orchestrator:
    """The dependency form: async, so FastAPI does not spend a worker thread on every request for it."""
    return context_of(request)
