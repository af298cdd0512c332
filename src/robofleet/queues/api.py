"""HTTP routes of queues (/api/v1/queues) and their items."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import iterate_in_threadpool

from robofleet.auth.principal import Principal
from robofleet.errors import Invalid
from robofleet.queues.schemas import (
    MAX_LEASE_BATCH,
    Added,
    AddItems,
    Bulk,
    Complete,
    Completed,
    CompletedOne,
    CompleteMany,
    Extend,
    Fail,
    ItemDetail,
    ItemFilter,
    ItemOut,
    Lease,
    LeasedItem,
    LeasedItems,
    QueueCreate,
    QueueOut,
    QueueStats,
    QueueUpdate,
)
from robofleet.queues.service import QueuesService
from robofleet.queues.states import ItemState
from robofleet.web.deps import Context
from robofleet.web.paging import Paging
from robofleet.web.schemas import PageOut
from robofleet.web.security import Require

router = APIRouter(prefix="/api/v1", tags=["queues"])


async def queues_service(ctx: Context) -> QueuesService:
    found = ctx.service("queues")
    assert isinstance(found, QueuesService)
    return found


Queues = Annotated[QueuesService, Depends(queues_service)]
Read = Depends(Require("queues:read"))
Write = Depends(Require("queues:write"))
Work = Depends(Require("queues:work"))


async def item_filter(
    state: Annotated[list[ItemState] | None, Query(description="Repeat for several")] = None,
    reference_prefix: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    since: Annotated[datetime | None, Query(description="Added at or after (with a UTC offset)")] = None,
    until: Annotated[datetime | None, Query(description="Added before")] = None,
) -> ItemFilter:
    """The filter of a list or an export, from the query (422 naming the parameter when malformed)."""
    try:
        return ItemFilter(state=state, reference_prefix=reference_prefix, since=since, until=until)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = f"query.{first['loc'][0]}" if first["loc"] else "query"
        raise Invalid(f"{field}: {first['msg']}", details=[{"field": field, "message": first["msg"]}]) from None


Filter = Annotated[ItemFilter, Depends(item_filter)]


@router.get("/queues")
def list_queues(queues: Queues, paging: Paging, principal: Principal = Read) -> PageOut[QueueOut]:
    return PageOut.of(queues.list_queues(principal, **paging))


@router.post("/queues", status_code=201)
def create_queue(data: QueueCreate, queues: Queues, principal: Principal = Write) -> QueueOut:
    return queues.create_queue(principal, data)


@router.get("/queues/{name}")
def get_queue(name: str, queues: Queues, principal: Principal = Read) -> QueueOut:
    return queues.get_queue(principal, name)


@router.patch("/queues/{name}")
def update_queue(name: str, data: QueueUpdate, queues: Queues, principal: Principal = Write) -> QueueOut:
    return queues.update_queue(principal, name, data)


@router.delete("/queues/{name}", status_code=204)
def delete_queue(
    name: str,
    queues: Queues,
    principal: Principal = Write,
    force: Annotated[bool, Query(description="Also when items are unfinished: they are dropped")] = False,
) -> Response:
    queues.delete_queue(principal, name, force=force)
    return Response(status_code=204)


@router.get("/queues/{name}/stats")
def stats(name: str, queues: Queues, principal: Principal = Read) -> QueueStats:
    """Counts by state, throughput of the last hour, handling times, SLA and the oldest waiting item."""
    return queues.stats(principal, name)


@router.post("/queues/{name}/items", status_code=201)
def add_items(name: str, data: AddItems, queues: Queues, principal: Principal = Write) -> Added:
    """Add items in one transaction; a duplicate reference in a unique queue is refused alone (`refused`)."""
    return queues.add_items(principal, name, data.items)


@router.get("/queues/{name}/items")
def list_items(
    name: str, queues: Queues, paging: Paging, where: Filter, principal: Principal = Read
) -> PageOut[ItemOut]:
    """Newest first."""
    return PageOut.of(queues.list_items(principal, name, where, **paging))


@router.post(
    "/queues/{name}/items/next",
    response_model=LeasedItem | LeasedItems,
    responses={204: {"description": "No item"}},
)
async def next_item(
    name: str,
    request: Request,
    queues: Queues,
    principal: Principal = Work,
    wait: Annotated[float, Query(ge=0, description="Seconds to wait for an item (long poll)")] = 0,
    count: Annotated[
        int | None,
        Query(ge=1, le=MAX_LEASE_BATCH, description='Lease up to this many ready items at once: `{"items": [..]}`'),
    ] = None,
) -> LeasedItem | LeasedItems | Response:
    """Lease the best ready item (priority, then deadline, then age), or with `count` up to that many (best first,
    each with a lease of its own, as many as are ready once one is); 204 when none came within `wait`."""
    items = await queues.leases.next_many(principal, name, count or 1, wait=wait)
    if not items:
        return Response(status_code=204)
    if wait > 0 and await request.is_disconnected():
        # The caller gave up waiting: the items go back at once rather than when their leases run out.
        for item in items:
            await run_in_threadpool(queues.leases.release, principal, name, item.id, item.lease_id)
        return Response(status_code=204)
    return items[0] if count is None else LeasedItems(items=items)


@router.get("/queues/{name}/items/export")
def export_items(
    name: str,
    queues: Queues,
    where: Filter,
    principal: Principal = Read,
    format: Annotated[Literal["csv", "ndjson"], Query()] = "ndjson",
) -> StreamingResponse:
    """The filter's items, oldest first, streamed."""
    text = queues.export_items(principal, name, where, format)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    headers = {"Content-Disposition": f'attachment; filename="{name}-items.{format}"'}
    return StreamingResponse(iterate_in_threadpool(text), media_type=media, headers=headers)


@router.post("/queues/{name}/items/retry")
def retry_items(name: str, where: ItemFilter, queues: Queues, principal: Principal = Write) -> Bulk:
    """The filter's failed and abandoned items (e.g. `{"ids": [..]}`) wait again with a full round of retries."""
    return queues.retry_items(principal, name, where)


@router.post("/queues/{name}/items/delete")
def delete_items(name: str, where: ItemFilter, queues: Queues, principal: Principal = Write) -> Bulk:
    """The filter's items are marked deleted; an empty filter deletes every item of the queue."""
    return queues.delete_items(principal, name, where)


@router.get("/queues/{name}/items/{item_id}")
def get_item(name: str, item_id: int, queues: Queues, principal: Principal = Read) -> ItemDetail:
    return queues.get_item(principal, name, item_id)


@router.post("/queues/{name}/items/complete")
def complete_many(
    name: str,
    data: CompleteMany,
    queues: Queues,
    principal: Principal = Work,
    next: Annotated[int, Query(ge=0, le=MAX_LEASE_BATCH, description="Then lease up to this many items")] = 0,
) -> Completed:
    """Complete several items, each with its `lease_id` and `output`: a report whose lease the caller lost is
    refused alone (`refused`, with its reason), the others stand. With `next`, the answer also brings up to that many
    items leased next (`items`)."""
    done = queues.leases.complete_many(principal, name, data.items)
    if next:
        done.items = queues.leases.claim_many(principal, name, next)
    return done


@router.post("/queues/{name}/items/{item_id}/complete", response_model=ItemOut | CompletedOne)
def complete(
    name: str,
    item_id: int,
    data: Complete,
    queues: Queues,
    principal: Principal = Work,
    next: Annotated[
        int,
        Query(ge=0, le=MAX_LEASE_BATCH, description='Then lease up to this many items: `{"completed", "items"}`'),
    ] = 0,
) -> ItemOut | CompletedOne:
    """409 `lease_lost` when the caller's lease expired or another worker holds the item. With `next`, the answer
    is the item done and up to that many items leased next."""
    done = queues.leases.complete(principal, name, item_id, data.lease_id, data.output)
    if not next:
        return done
    return CompletedOne(completed=done, items=queues.leases.claim_many(principal, name, next))


@router.post("/queues/{name}/items/{item_id}/fail")
def fail(name: str, item_id: int, data: Fail, queues: Queues, principal: Principal = Work) -> ItemOut:
    """business: final; application: retried with backoff while retries are left, then abandoned."""
    return queues.leases.fail(principal, name, item_id, data.lease_id, data.kind, data.message)


@router.post("/queues/{name}/items/{item_id}/extend")
def extend(name: str, item_id: int, data: Extend, queues: Queues, principal: Principal = Work) -> LeasedItem:
    return queues.leases.extend(principal, name, item_id, data.lease_id, data.seconds)


@router.post("/queues/{name}/items/{item_id}/release")
def release(name: str, item_id: int, data: Lease, queues: Queues, principal: Principal = Work) -> ItemOut:
    """Give the item back: it waits again at once, this attempt not counted."""
    return queues.leases.release(principal, name, item_id, data.lease_id)
