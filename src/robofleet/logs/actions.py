"""Logs as actions: `logs.search`, the same filters, narrowing and search as `GET /api/v1/logs`, so a schedule,
the console or an outside system reads the log as the caller may and no more."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from robofleet.activities.registry import ActionContext, Params, Registry
from robofleet.errors import StoreUnavailable
from robofleet.logs.filters import filters_from, narrowed
from robofleet.logs.service import PAGE_MAX


class SearchParams(Params):
    since: datetime | None = None
    until: datetime | None = None
    level: str | None = Field(None, max_length=10, description="Minimum level: DEBUG … CRITICAL or 0-50")
    source: str | None = Field(None, max_length=128, description="Source or glob: robot:*, agent:pc-??")
    run_id: str | None = Field(None, max_length=64)
    q: str | None = Field(None, max_length=500, description="Words that must all appear in the message")
    limit: int = Field(100, ge=1, le=PAGE_MAX)
    cursor: str | None = Field(None, max_length=200)
    order: Literal["desc", "asc"] = "desc"


def register(registry: Registry) -> None:
    @registry.register("logs.search", permission="logs:read", params=SearchParams)
    def search(ctx: ActionContext, params: SearchParams) -> dict[str, Any]:
        """A page of the log records matching the filters, newest first unless order=asc; a reader narrowed to
        some robots reads their records only."""
        logs, robots = ctx.app.logs, ctx.app.robots
        if logs is None or robots is None:
            raise StoreUnavailable("the log store is not available yet: the store is not ready")
        filters = filters_from(params.since, params.until, params.level, params.source, params.run_id, params.q)
        visible = narrowed(filters, robots.robot_scope(ctx.principal, "logs:read"))
        return logs.search(visible, limit=params.limit, cursor=params.cursor, order=params.order)
