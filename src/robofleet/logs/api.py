"""HTTP routes of the log store: ingest, search, export (NDJSON), live tail (SSE)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from robofleet.auth.principal import Principal
from robofleet.errors import Invalid
from robofleet.logs.filters import Filters, filters_from, narrowed
from robofleet.logs.service import MAX_ID
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.deps import logs_of, robots_of
from robofleet.web.security import Require
from robofleet.web.sse import HEARTBEAT_SECONDS, sse_response

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])
EXPORT_MAX = 10_000_000

INGEST_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["records"],
                    "additionalProperties": False,
                    "properties": {
                        "records": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["message", "source"],
                                "additionalProperties": False,
                                "properties": {
                                    "time": {
                                        "type": "string",
                                        "format": "date-time",
                                        "description": "Default: when received",
                                    },
                                    "level": {
                                        "description": "DEBUG, INFO, WARNING, ERROR, CRITICAL, or 0-50; default INFO"
                                    },
                                    "source": {
                                        "type": "string",
                                        "description": "orchestrator, agent:<name> or robot:<name>",
                                    },
                                    "run_id": {"type": "string"},
                                    "message": {"type": "string"},
                                    "fields": {"type": "object"},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


def visible_to(principal: Principal, ctx: Orchestrator, filters: Filters) -> Filters:
    """`filters` narrowed to what `principal` may read (logs/filters.py `narrowed`), with the robots service's
    answer of which robots that is."""
    return narrowed(filters, robots_of(ctx).robot_scope(principal, "logs:read"))


class FilterParams:
    def __init__(
        self,
        since: datetime | None = Query(None, description="From this time (inclusive)"),
        until: datetime | None = Query(None, description="Until this time (exclusive)"),
        level: str | None = Query(None, max_length=10, description="Minimum level: DEBUG … CRITICAL or 0-50"),
        source: str | None = Query(None, max_length=128, description="Source or glob: robot:*, agent:pc-??"),
        run_id: str | None = Query(None, max_length=64),
        q: str | None = Query(None, max_length=500, description="Words that must all appear in the message"),
    ) -> None:
        self.filters = filters_from(since, until, level, source, run_id, q)


@router.post("", openapi_extra=INGEST_SCHEMA)
async def ingest(
    request: Request, principal: Principal = Depends(Require("logs:write")), ctx: Orchestrator = Depends(get_context)
) -> JSONResponse:
    """Store a batch; each bad record is refused with its index and reason while the good ones are kept."""
    service = logs_of(ctx)
    result = await asyncio.wrap_future(service.ingest(await request.body(), service.sender_of(principal)))
    answer = {
        "accepted": result.accepted,
        "rejected": result.rejected,
        "first_id": result.ids[0] if result.ids else None,
        "last_id": result.ids[-1] if result.ids else None,
    }
    if result.rejected and not result.accepted:
        raise Invalid(
            f"all {len(result.rejected)} records were refused; first: record "
            f"{result.rejected[0]['index']}: {result.rejected[0]['error']}",
            details=answer,
        )
    return JSONResponse(answer, status_code=201 if not result.rejected else 207)


@router.get("")
def search(
    principal: Principal = Depends(Require("logs:read")),
    ctx: Orchestrator = Depends(get_context),
    params: FilterParams = Depends(),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=200),
    order: Literal["desc", "asc"] = Query("desc", description="desc: newest first"),
) -> dict[str, Any]:
    """A page of matching records; `next_cursor` continues, `prev_cursor` goes back the other way."""
    filters = visible_to(principal, ctx, params.filters)
    return logs_of(ctx).search(filters, limit=limit, cursor=cursor, order=order)


@router.get("/export")
def export(
    principal: Principal = Depends(Require("logs:read")),
    ctx: Orchestrator = Depends(get_context),
    params: FilterParams = Depends(),
    limit: int = Query(EXPORT_MAX, ge=1, le=EXPORT_MAX),
    order: Literal["asc", "desc"] = Query("asc", description="asc: oldest first"),
) -> StreamingResponse:
    """Every matching record (up to `limit`) as NDJSON, oldest first unless order=desc, streamed."""
    service = logs_of(ctx)
    filters = visible_to(principal, ctx, params.filters)

    def lines() -> Iterator[str]:
        for chunk in service.export(filters, limit, ascending=order == "asc"):
            yield "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in chunk)

    return StreamingResponse(
        iterate_in_threadpool(lines()),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="robofleet-logs.ndjson"'},
    )


@router.get("/stream")
async def stream(
    request: Request,
    principal: Principal = Depends(Require("logs:read")),
    ctx: Orchestrator = Depends(get_context),
    params: FilterParams = Depends(),
    after: int | None = Query(None, ge=0, le=MAX_ID, description="Resume after this id (or Last-Event-ID)"),
) -> StreamingResponse:
    """Server-sent events: `log` per matching record as it is stored; resumes from `Last-Event-ID`."""
    service = logs_of(ctx)
    header = request.headers.get("last-event-id")
    if after is None and header:
        if not (header.isascii() and header.isdigit()) or int(header) > MAX_ID:
            raise Invalid("Last-Event-ID must be a record id", details={"field": "Last-Event-ID"})
        after = int(header)

    filters = await asyncio.to_thread(visible_to, principal, ctx, params.filters)

    async def events() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        async for text in service.tail(filters, after, request.is_disconnected, heartbeat=HEARTBEAT_SECONDS):
            yield text

    return sse_response(events(), request, "logs:read")
