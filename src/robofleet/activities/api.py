"""HTTP routes of activities: submit, read, wait, cancel, stream; and the list of actions."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import TypeAdapter, ValidationError

from robofleet.activities import store_ops
from robofleet.activities.models import Activity, ActivityState
from robofleet.activities.processor import TOPIC
from robofleet.activities.schemas import ActionOut, ActivityBatchIn, ActivityIn, ActivityOut, Submitted
from robofleet.activities.store_ops import activity_out
from robofleet.activities.visibility import payload_shown_to, shown_to
from robofleet.auth.principal import Principal
from robofleet.errors import Invalid, RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.store.pagination import Page, paginate
from robofleet.web.context import get_context
from robofleet.web.deps import processor_of
from robofleet.web.errors import describe_validation
from robofleet.web.schemas import PageOut
from robofleet.web.security import Require
from robofleet.web.sse import sse_message, sse_response, sse_stream

router = APIRouter(prefix="/api/v1", tags=["activities"])
MAX_WAIT = 300.0
_many = TypeAdapter(list[ActivityIn])

BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
SUBMIT_SCHEMA = {
    "parameters": [
        {
            "name": "wait",
            "in": "query",
            "required": False,
            "description": "Seconds to wait for the outcome",
            "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT, "default": 0},
        },
        {
            "name": "batch",
            "in": "query",
            "required": False,
            "description": "Run a list as one ordered batch",
            "schema": {"type": "boolean", "default": False},
        },
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/ActivityIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/ActivityIn"}},
                        {"$ref": "#/components/schemas/ActivityBatchIn"},
                    ]
                }
            }
        },
    },
}


def parse_submission(raw: Any, batch_flag: bool) -> tuple[list[ActivityIn], bool]:
    try:
        if isinstance(raw, list):
            return _many.validate_python(raw), batch_flag
        if isinstance(raw, dict) and "activities" in raw:
            envelope = ActivityBatchIn.model_validate(raw)
            return envelope.activities, envelope.batch or batch_flag
        if isinstance(raw, dict):
            return [ActivityIn.model_validate(raw)], False
    except ValidationError as exc:
        message, details = describe_validation(list(exc.errors()))
        raise Invalid(message, details=details) from None
    raise Invalid('the body must be an activity object, a list of them, or {"activities": [...], "batch": ...}')


def submit_options(request: Request) -> tuple[float, bool]:
    """`wait` and `batch` from the query string. Read by hand on this, the busiest route: FastAPI's parameter
    machinery cost more per submit than the rest of the route (they are declared in SUBMIT_SCHEMA)."""
    query = request.query_params
    wait = 0.0
    if "wait" in query:
        try:
            wait = float(query["wait"])
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= MAX_WAIT:
            raise Invalid(f"wait must be a number of seconds from 0 to {MAX_WAIT:g}", details={"field": "wait"})
    batch = query.get("batch", "false").lower()
    if batch not in BOOLEANS:
        raise Invalid("batch must be true or false", details={"field": "batch"})
    return wait, BOOLEANS[batch]


@router.post("/activities", status_code=201, openapi_extra=SUBMIT_SCHEMA)
async def submit(
    request: Request,
    principal: Principal = Depends(Require("activities:run")),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    """Queue one activity, a list, or an ordered batch; answers with their ids at once (or after `wait`)."""
    wait, batch = submit_options(request)
    try:
        raw = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise RobofleetError(f"the body is not valid JSON: {exc}", code="malformed_json") from None
    items, as_batch = parse_submission(raw, batch)
    processor = processor_of(ctx)
    outs = await processor.submit(principal, items, batch=as_batch)
    if wait:
        outs = await processor.wait([out.id for out in outs], wait)
    body = Submitted(ids=[out.id for out in outs], activities=outs)
    return Response(body.model_dump_json(), status_code=201, media_type="application/json")


@router.get("/activities")
def list_activities(
    principal: Principal = Depends(Require("activities:read")),
    ctx: Orchestrator = Depends(get_context),
    state: ActivityState | None = None,
    action: str | None = Query(None, max_length=128, description="Name or prefix, e.g. users."),
    requested_by: str | None = Query(None, max_length=128),
    batch_id: int | None = None,
    limit: int = Query(100, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> PageOut[ActivityOut]:
    """Newest first. Args and results only of the caller's own activities and of actions it may run itself."""
    stmt = store_ops.list_query(state, action, requested_by, batch_id)
    registry = processor_of(ctx).registry
    with ctx.store.transaction() as session:
        page = paginate(session, stmt, Activity.id, limit=limit, cursor=cursor, descending=True)
        items = [shown_to(principal, registry, activity_out(row)) for row in page.items]
        return PageOut.of(Page(items, page.next_cursor))


@router.get("/activities/stream")
async def stream(
    request: Request,
    principal: Principal = Depends(Require("activities:read")),
    ctx: Orchestrator = Depends(get_context),
) -> StreamingResponse:
    """Server-sent events: one `activity` event per state change of any activity (args and results as listed)."""
    hub = request.app.state.events
    registry = processor_of(ctx).registry

    def render(payload: dict[str, Any]) -> str:
        shown = payload_shown_to(principal, registry, payload)
        return sse_message("activity", shown, event_id=f"{payload['id']}-{payload['state']}")

    return sse_response(sse_stream(hub, TOPIC, render, request.is_disconnected), request, "activities:read")


@router.get("/activities/{activity_id}")
async def get_activity(
    activity_id: int,
    principal: Principal = Depends(Require("activities:read")),
    ctx: Orchestrator = Depends(get_context),
    wait: float = Query(0, ge=0, le=MAX_WAIT, description="Seconds to wait for the outcome"),
) -> ActivityOut:
    processor = processor_of(ctx)
    found = (await processor.wait([activity_id], wait))[0] if wait else await processor.get(activity_id)
    return shown_to(principal, processor.registry, found)


@router.post("/activities/{activity_id}/cancel")
async def cancel_activity(
    activity_id: int,
    principal: Principal = Depends(Require("activities:run")),
    ctx: Orchestrator = Depends(get_context),
) -> ActivityOut:
    """Cancel a queued activity (409 when it runs or has finished): one's own, or one whose action the caller may
    run itself."""
    return await processor_of(ctx).cancel(principal, activity_id)


@router.get("/actions")
def list_actions(
    request: Request,
    _: Principal = Depends(Require("activities:read")),
    q: str = Query("", max_length=128, description="Name or summary fragment"),
) -> list[ActionOut]:
    """Every registered action with its parameter schema, docs and permission."""
    registry = request.app.state.registry
    return [
        ActionOut(
            name=a.name, summary=a.summary, doc=a.doc, permission=a.permission, parameters=a.params.model_json_schema()
        )
        for a in registry.search(q)
    ]
