"""The Logs page: filter bar, level colours, run links, permalinks, and a live tail."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from robofleet.auth.principal import Principal
from robofleet.errors import RobofleetError
from robofleet.logs.api import visible_to
from robofleet.logs.filters import filters_from
from robofleet.orchestrator import Orchestrator
from robofleet.web.context import get_context
from robofleet.web.deps import logs_of
from robofleet.web.security import Require
from robofleet.web.templating import page

router = APIRouter(include_in_schema=False)
LEVEL_CHOICES = ["", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def parse_time(value: str) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.now().astimezone().tzinfo)


@router.get("/panel/logs")
def logs_page(
    request: Request,
    principal: Principal = Depends(Require("logs:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
    since: str = Query("", max_length=40),
    until: str = Query("", max_length=40),
    level: str = Query("", max_length=10),
    source: str = Query("", max_length=128),
    run_id: str = Query("", max_length=64),
    q: str = Query("", max_length=500),
    cursor: str | None = Query(None, max_length=200),
    order: Literal["desc", "asc"] = Query("desc", description="desc: newest first"),
) -> Response:
    chosen = {"since": since, "until": until, "level": level, "source": source, "run_id": run_id, "q": q}
    error = None
    result: dict[str, Any] = {"items": [], "next_cursor": None, "prev_cursor": None}
    query = {key: value for key, value in chosen.items() if value}
    live = dict(query)  # the tail's filters: the API wants times with their zone, the form takes local times too
    flipped = urlencode({**query, "order": "desc" if order == "asc" else "asc"})  # the other order, from its start
    if order == "asc":
        query["order"] = order  # the pager's links and the filter keep it
    try:
        try:
            filters = filters_from(parse_time(since), parse_time(until), level or None, source, run_id, q)
            for key, moment in (("since", filters.since), ("until", filters.until)):
                if moment is not None:
                    live[key] = moment.isoformat()
        except ValueError:
            raise RobofleetError(
                "since and until must be times like 2026-01-31T08:00 or 2026-01-31T08:00:00Z"
            ) from None
        result = logs_of(ctx).search(visible_to(principal, ctx, filters), limit=200, cursor=cursor, order=order)
    except RobofleetError as exc:
        error = exc.message
    return page(
        request,
        "logs.html",
        principal,
        section="logs",
        records=result["items"],
        error=error,
        next_cursor=result["next_cursor"],
        prev_cursor=result["prev_cursor"],
        chosen=chosen,
        levels=LEVEL_CHOICES,
        query=urlencode(query),
        order=order,
        flipped=flipped,
        live_query=urlencode(live),
    )
