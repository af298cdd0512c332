"""Builds the FastAPI application: middleware, error shapes, every domain's routes, static assets."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from robofleet import __version__
from robofleet.domain import Domain
from robofleet.domains import DOMAINS, routers
from robofleet.orchestrator import Orchestrator
from robofleet.web import docs, errors, health, metrics, panel
from robofleet.web.inputs import RefuseNul
from robofleet.web.limits import BodySizeLimit

STATIC = Path(__file__).with_name("static")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'",
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


# The web layer's own routers, after every domain's (domains.routers()); the route audit test walks all_routers().
OWN_ROUTERS: list[APIRouter] = [health.router, metrics.router, panel.router, docs.router]


def all_routers(domains: Sequence[Domain] = DOMAINS) -> list[APIRouter]:
    return [*routers(domains), *OWN_ROUTERS]


def create_app(orchestrator: Orchestrator, *, config_path: Path | None = None) -> FastAPI:
    """The whole HTTP surface for one orchestrator, whose services start and stop with the app."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await orchestrator.start()
        # Everything built at start (modules, routes, settings) lives as long as the process: out of the
        # collector's sight, the full collections a busy server triggers stop walking it again and again.
        gc.freeze()
        try:
            yield
        finally:
            await orchestrator.stop()

    # /api/docs is web/docs.py's: FastAPI's own page loads Swagger UI from a CDN and starts it inline.
    app = FastAPI(
        title="robofleet",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.context = orchestrator
    app.state.registry = orchestrator.registry
    app.state.events = orchestrator.events
    app.state.config_path = str(config_path) if config_path else None
    app.state.metrics = metrics.Metrics()
    errors.install(app)
    for router in all_routers(orchestrator.domains):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    # The last added is the outermost: metrics see every answer, each answer has the security headers, and an
    # unexpected error is answered (and logged once) whatever layer under it raised.
    app.add_middleware(RefuseNul)
    app.add_middleware(BodySizeLimit, max_bytes=orchestrator.settings.server.max_body_bytes)
    app.add_middleware(errors.UnexpectedErrors)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(metrics.MetricsMiddleware, metrics=app.state.metrics)
    return app
