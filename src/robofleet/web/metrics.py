"""Prometheus metrics: request counts and latencies per route template, and `/metrics` itself."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from robofleet.auth.principal import Principal
from robofleet.domain import Domain, load
from robofleet.errors import StoreUnavailable
from robofleet.web.context import context_of
from robofleet.web.security import Require


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "robofleet_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "robofleet_http_request_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.store_ready = Gauge(
            "robofleet_store_ready", "1 when the store is reachable and migrated", registry=self.registry
        )
        self._domains: set[str] = set()

    def add_domains(self, domains: Sequence[Domain], service: Callable[[str], Any]) -> None:
        """Register each domain's collector (Domain.metrics) once its service runs."""
        for domain in domains:
            if domain.metrics is None or domain.name in self._domains:
                continue
            try:
                running = service(domain.name)
            except StoreUnavailable:
                continue  # not started yet: the next scrape registers it
            self.registry.register(load(domain.metrics)(running))
            self._domains.add(domain.name)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            # The template, never the raw path of a parametrised route: that would make a series per user.
            # Routes without a template (openapi, static files) are few; unknown paths all count as one.
            template = getattr(route, "path", None) or (scope["path"] if status != 404 else "unmatched")
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - started)


router = APIRouter()


class MetricsAccess(Require):
    """`metrics:read`, unless `server.metrics_public` lets scrapers in without a token."""

    async def __call__(self, request: Request) -> Principal | None:  # type: ignore[override]
        if context_of(request).settings.server.metrics_public:
            return None
        return await super().__call__(request)


@router.get("/metrics", include_in_schema=False)
def metrics_endpoint(request: Request, _: Principal | None = Depends(MetricsAccess("metrics:read"))) -> Response:
    metrics: Metrics = request.app.state.metrics
    context = context_of(request)
    metrics.store_ready.set(1 if context.ready else 0)
    metrics.add_domains(context.domains, context.service)
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
