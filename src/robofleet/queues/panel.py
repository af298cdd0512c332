"""Queues pages: the list (counts by state, SLA status, the last hour's throughput as a sparkline drawn here in SVG,
refreshed while open), a New queue form, a queue's page (its figures, its items filtered by state, reference and
time, retry and delete of the ticked ones, exports, and the upload of a CSV or JSON file, which queues.js parses and
sends in parts through the API's add route so that its progress is real) and an item's page (payload, output,
error, attempts and history). Every change goes through QueuesService, which checks the permission and audits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from robofleet.auth.principal import Principal
from robofleet.errors import Conflict, Invalid, RobofleetError
from robofleet.orchestrator import Orchestrator
from robofleet.queues.api import Queues
from robofleet.queues.panel_forms import (
    ItemsQuery,
    QueueForm,
    QueueFormInvalid,
    blank_queue_form,
    duration,
    export_query,
    parse_queue_create,
    queue_values,
    selected_ids,
)
from robofleet.queues.schemas import EventOut, ItemFilter, ItemOut, QueueOut, QueueStats, Skipped
from robofleet.queues.service import QueuesService
from robofleet.queues.states import ItemState
from robofleet.queues.store_ops import DELETABLE, RETRYABLE
from robofleet.store.base import utcnow
from robofleet.web.context import get_context
from robofleet.web.form_state import text_of
from robofleet.web.list_query import PAGE_SIZES, WITHIN, FilterInvalid
from robofleet.web.security import Require
from robofleet.web.templating import page, redirect

router = APIRouter(prefix="/panel/queues", include_in_schema=False)
HOME = "/panel/queues"
READ = Depends(Require("queues:read", panel=True))
WRITE = Depends(Require("queues:write", panel=True))
REFRESH_SECONDS = 5  # how often an open page asks for its figures again (queues publish no event to follow)
UPLOAD_PART = 1000  # items per request of an upload, as `robofleet queue add --file` sends them
NEAR_SLA = 0.8  # the oldest waiting item past this share of the SLA: the queue is "near" it
WAITING = (ItemState.NEW, ItemState.RETRY)
# A row says whether it may be retried or deleted by the states the bulk acts change (RETRYABLE, DELETABLE).
STATE_TITLES = {
    ItemState.NEW: "new",
    ItemState.RETRY: "retry",
    ItemState.IN_PROGRESS: "in progress",
    ItemState.DONE: "done",
    ItemState.FAILED: "failed",
    ItemState.ABANDONED: "abandoned",
    ItemState.DELETED: "deleted",
}


# ---- figures as the pages draw them ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sparkline:
    """A series as an SVG sparkline `width` by `height` units: its line's points, the area under it, and what a
    hover says."""

    line: str
    area: str
    width: int
    height: int
    total: int
    peak: int
    title: str


def draw_sparkline(values: Sequence[int], width: int, height: int, unit: str = "done") -> Sparkline:
    """`values` (one a minute, oldest first) scaled to the box: the busiest minute touches the top, none the
    bottom line; a flat series lies on the bottom."""
    total, peak, count = sum(values), max(values, default=0), len(values)
    step = width / max(count - 1, 1)
    scale = (height - 2) / peak if peak else 0.0
    points = [(round(index * step, 1), round(height - 1 - value * scale, 1)) for index, value in enumerate(values)]
    line = " ".join(f"{x:g},{y:g}" for x, y in points)
    area = f"M0,{height} " + " ".join(f"L{x:g},{y:g}" for x, y in points) + f" L{width},{height} Z" if points else ""
    title = f"{total:,} {unit} in the last {count} minutes; busiest minute: {peak:,}"
    return Sparkline(line=line, area=area, width=width, height=height, total=total, peak=peak, title=title)


@dataclass(frozen=True)
class SlaStatus:
    """A queue's SLA as a badge: its class ("ok", "warn", "bad" or none), text and the hover's explanation."""

    badge: str
    text: str
    detail: str


def sla_status(sla_minutes: int | None, stats: QueueStats) -> SlaStatus:
    """Past it when an unfinished item is older than the SLA; near it when the oldest waiting item has used most
    of it; else within it."""
    if sla_minutes is None:
        return SlaStatus("", "no SLA", "The queue has no SLA (sla_minutes).")
    if stats.past_sla:
        return SlaStatus(
            "bad",
            f"{stats.past_sla:,} past SLA",
            f"{stats.past_sla:,} unfinished item(s) added more than {sla_minutes} min ago.",
        )
    oldest = stats.oldest_waiting_seconds
    if oldest is not None and oldest >= NEAR_SLA * sla_minutes * 60:
        return SlaStatus(
            "warn", "near SLA", f"The oldest waiting item is {duration(oldest)} old; the SLA is {sla_minutes} min."
        )
    return SlaStatus("ok", "within SLA", f"Every unfinished item is younger than {sla_minutes} min.")


@dataclass(frozen=True)
class Figures:
    """A queue with its figures as the list and its page show them."""

    queue: QueueOut
    stats: QueueStats
    sla: SlaStatus
    spark: Sparkline

    @property
    def waiting(self) -> int:
        return sum(self.stats.counts.get(state, 0) for state in WAITING)

    @property
    def unfinished(self) -> int:
        return self.waiting + self.stats.counts.get(ItemState.IN_PROGRESS, 0)


def figures_of(queue: QueueOut, stats: QueueStats, width: int = 120, height: int = 28) -> Figures:
    return Figures(
        queue, stats, sla_status(queue.sla_minutes, stats), draw_sparkline(stats.throughput_per_minute, width, height)
    )


def every_queue(service: QueuesService, principal: Principal) -> list[Figures]:
    """Every queue with its figures, in the order of their creation."""
    queues: list[QueueOut] = []
    cursor: str | None = None
    while True:
        found = service.list_queues(principal, limit=500, cursor=cursor)
        queues += found.items
        cursor = found.next_cursor
        if cursor is None or not found.items:
            break
    stats = {figures.queue: figures for figures in service.figures(principal)}
    return [figures_of(queue, stats[queue.name]) for queue in queues if queue.name in stats]


def attempt_seconds(event: EventOut) -> float | None:
    """How long the attempt an entry ends took (None for an operator's act)."""
    if event.started_at is None:
        return None
    return max((event.at - event.started_at).total_seconds(), 0.0)


def _page(request: Request, template: str, principal: Principal, status: int = 200, **context: Any) -> Response:
    """A queues page or fragment, with what every one of them uses."""
    return page(
        request,
        template,
        principal,
        status=status,
        section="queues",
        write=principal.can("queues:write"),
        duration=duration,
        titles=STATE_TITLES,
        refresh_seconds=REFRESH_SECONDS,
        **context,
    )


# ---- the list -----------------------------------------------------------------------------------------------------


def _list_page(
    request: Request, service: QueuesService, principal: Principal, form: QueueForm, status: int = 200
) -> Response:
    response = _page(request, "queues.html", principal, status=status, rows=every_queue(service, principal), form=form)
    if form.open:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("")
def queues_page(
    request: Request,
    queues: Queues,
    principal: Principal = READ,
    part: str | None = Query(None, max_length=20, description="rows: the table's body alone, for the refresh"),
) -> Response:
    if part == "rows":
        return _page(request, "queue_rows.html", principal, rows=every_queue(queues, principal), at=utcnow())
    return _list_page(request, queues, principal, blank_queue_form())


@router.post("")
async def queue_create(request: Request, queues: Queues, principal: Principal = WRITE) -> Response:
    values = queue_values(await request.form())

    def create() -> Response:
        form = QueueForm(values)
        try:
            created = queues.create_queue(principal, parse_queue_create(values))
        except QueueFormInvalid as exc:
            form.errors = exc.errors
            return _list_page(request, queues, principal, form, status=422)
        except Conflict as exc:
            form.errors = {"name": exc.message}
            return _list_page(request, queues, principal, form, status=exc.status)
        except RobofleetError as exc:
            form.message = exc.message
            return _list_page(request, queues, principal, form, status=exc.status)
        return redirect(f"{HOME}/{created.name}", notice=f"Queue {created.name} created.")

    return await run_in_threadpool(create)


# ---- one queue ----------------------------------------------------------------------------------------------------


@dataclass
class Listing:
    """The items a queue's page lists: the filter as typed, as read, and the page of items (or why none)."""

    query: ItemsQuery
    where: ItemFilter | None
    items: list[ItemOut]
    next_cursor: str | None
    errors: dict[str, str]


def _listing(service: QueuesService, principal: Principal, name: str, query: ItemsQuery) -> Listing:
    try:
        where = query.item_filter(utcnow())
    except FilterInvalid as exc:
        return Listing(query, None, [], None, exc.errors)
    try:
        found = service.list_items(principal, name, where, limit=query.limit, cursor=query.cursor or None)
    except Invalid as exc:  # a cursor this server did not hand out
        return Listing(query, where, [], None, {"cursor": exc.message})
    return Listing(query, where, found.items, found.next_cursor, {})


@router.get("/{name}")
def queue_page(
    name: str,
    request: Request,
    queues: Queues,
    principal: Principal = READ,
    ctx: Orchestrator = Depends(get_context),
    part: str | None = Query(None, max_length=20, description="figures or items: that part alone, for the refresh"),
) -> Response:
    queue = queues.get_queue(principal, name)
    if part == "figures":
        return _page(
            request, "queue_figures.html", principal, f=figures_of(queue, queues.stats(principal, name), 360, 60)
        )
    listing = _listing(queues, principal, name, ItemsQuery.of(request.query_params))
    context: dict[str, Any] = {"queue": queue, "listing": listing, "retryable": RETRYABLE, "deletable": DELETABLE}
    if part == "items":
        return _page(request, "queue_items.html", principal, **context)
    settings = ctx.settings
    return _page(
        request,
        "queue.html",
        principal,
        status=422 if listing.errors else 200,
        f=figures_of(queue, queues.stats(principal, name), 360, 60),
        states=list(STATE_TITLES),  # in the order of the counts above
        within=WITHIN,
        page_sizes=PAGE_SIZES,
        exports={
            fmt: f"/api/v1/queues/{name}/items/export?{export_query(listing.where, fmt)}"
            for fmt in ("csv", "ndjson")
            if listing.where is not None
        },
        upload={
            "part": min(UPLOAD_PART, settings.queueing.max_batch),
            "max_body": settings.server.max_body_bytes,
            "max_payload": settings.queueing.max_payload_bytes,
        },
        **context,
    )


@router.get("/{name}/items/{item_id}")
def item_page(
    name: str,
    item_id: int,
    request: Request,
    queues: Queues,
    principal: Principal = READ,
    back: str = Query("", max_length=2000, description="the list's query, for the way back"),
) -> Response:
    queue = queues.get_queue(principal, name)
    item = queues.get_item(principal, name, item_id)
    kept = ItemsQuery.of(parse_qs(back)).query(cursor=True)
    here = f"{HOME}/{name}/items/{item_id}"
    return _page(
        request,
        "queue_item.html",
        principal,
        queue=queue,
        item=item,
        listed=f"{HOME}/{name}?{kept}" if kept else f"{HOME}/{name}",
        attempt_seconds=attempt_seconds,
        retryable=item.state in RETRYABLE,
        deletable=item.state in DELETABLE,
        here=f"{here}?{urlencode({'back': kept})}" if kept else here,
    )


def safe_back(name: str, back: str) -> str:
    """Where a form goes back to: a page of this queue, never anywhere else."""
    home = f"{HOME}/{name}"
    inside = back == home or back.startswith((home + "?", home + "/items/"))
    if inside and not any(character in back for character in "\\\r\n"):
        return back
    return home


@router.post("/{name}/items/retry")
async def items_retry(name: str, request: Request, queues: Queues, principal: Principal = WRITE) -> Response:
    """The ticked items that failed or were abandoned wait again, each with a full round of retries."""
    return await _act(name, request, queues, principal, "retry")


@router.post("/{name}/items/delete")
async def items_delete(name: str, request: Request, queues: Queues, principal: Principal = WRITE) -> Response:
    """The ticked items are marked deleted (a worker holding one is refused its report)."""
    return await _act(name, request, queues, principal, "delete")


async def _act(name: str, request: Request, service: QueuesService, principal: Principal, action: str) -> Response:
    form = await request.form()
    back = safe_back(name, text_of(form, "back"))
    try:
        ids = selected_ids(form)
    except ValueError as exc:
        return redirect(back, error=str(exc))
    act = service.retry_items if action == "retry" else service.delete_items
    try:
        done = await run_in_threadpool(act, principal, name, ItemFilter(ids=ids))
    except RobofleetError as exc:
        return redirect(back, error=exc.message)
    if action == "retry":
        text = f"{done.count:,} of {len(ids):,} selected item(s) will be retried."
        if done.skipped:
            text += f" Only failed and abandoned items are retried; not retried: {left_as_they_were(done.skipped)}."
    else:
        text = f"{done.count:,} item(s) deleted."
        if done.skipped:
            text += f" Not deleted: {left_as_they_were(done.skipped, {ItemState.DELETED: 'deleted already'})}."
    return redirect(back, notice=text)


def left_as_they_were(skipped: list[Skipped], titles: dict[ItemState, str] | None = None) -> str:
    """The items a bulk act skipped, counted by state (`titles` name some states otherwise): "2 done, 1 new, 1 not
    found"."""
    named = {**STATE_TITLES, **(titles or {})}
    counts = Counter("not found" if item.state is None else named[item.state] for item in skipped)
    return ", ".join(f"{count:,} {what}" for what, count in counts.items())
