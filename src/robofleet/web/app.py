"""Builds the FastAPI application: middleware, error shapes, every domain's routes, static assets."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from robofleet import __version__
from robofleet.activities import api as activities_api
from robofleet.activities import panel as activities_panel
from robofleet.activities.builtin import build_registry
from robofleet.activities.registry import Registry
from robofleet.agents import api as agents_api
from robofleet.agents import panel as agents_panel
from robofleet.agents import remote as agents_remote
from robofleet.auth import api as auth_api
from robofleet.auth import panel as auth_panel
from robofleet.errors import StoreUnavailable
from robofleet.logs import api as logs_api
from robofleet.logs import panel as logs_panel
from robofleet.robots import api as robots_api
from robofleet.robots import panel as robots_panel
from robofleet.settings import api as settings_api
from robofleet.web import errors, health, metrics, panel
from robofleet.web.context import AppContext
from robofleet.web.events import EventHub
from robofleet.web.limits import BodySizeLimit

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    ),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


# Every router of every domain; the route audit test walks this list. Routes are matched in this order, so the
# busiest (submits, log ingest, robot actions) come first: no path of one router is a prefix of another's.
ROUTERS: list[APIRouter] = [
    activities_api.router,
    logs_api.router,
    robots_api.router,
    agents_api.router,
    health.router,
    auth_api.router,
    settings_api.router,
    metrics.router,
    activities_panel.router,
    logs_panel.router,
    agents_panel.router,
    robots_panel.router,
    panel.router,
    auth_panel.router,
]


def create_app(context: AppContext, *, config_path: Path | None = None, registry: Registry | None = None) -> FastAPI:
    """The whole HTTP surface for one orchestrator; `context.ready` turns true once the store is prepared."""

    registry = registry or build_registry(context.settings)
    hub = EventHub()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from robofleet.server import run_services, start_services, stop_services

        if context.ready:
            # Started before the first request is served, so a ready orchestrator answers at once.
            with contextlib.suppress(StoreUnavailable):
                await start_services(context, registry, hub)
        task = asyncio.create_task(run_services(context, registry, hub))
        # Everything built at start (modules, routes, settings) lives as long as the process: out of the
        # collector's sight, the full collections a busy server triggers stop walking it again and again.
        gc.freeze()
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await stop_services(context)

    app = FastAPI(title="robofleet", version=__version__, lifespan=lifespan, docs_url="/api/docs", redoc_url=None)
    app.state.context = context
    app.state.registry = registry
    app.state.events = hub
    app.state.config_path = str(config_path) if config_path else None
    app.state.metrics = metrics.Metrics()
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    # The agents' WebSocket checks its token and agents:connect itself (see agents/remote.py).
    app.include_router(agents_remote.router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=context.settings.server.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(metrics.MetricsMiddleware, metrics=app.state.metrics)
    return app
