"""Runs pages: every run across the robots the reader may see (filtered by robot, state, agent, time and who or
what started it; each with its duration and why it failed; a page at a time; refreshed live as runs change), and
a page per run: what it is, its state timeline (each transition, who or what made it, when), its exit code
explained, its reason, and its whole output oldest first with tracebacks as one block (read through the logs
service). A run's page is made of sections (`RUN_SECTIONS`): a later part adds its own there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import ValidationError

from robofleet.auth.principal import Principal
from robofleet.errors import Invalid, RobofleetError
from robofleet.logs.filters import Filters, narrowed
from robofleet.orchestrator import Orchestrator
from robofleet.robots.models import ACTIVE
from robofleet.robots.reasons import Origin, describe_actor, duration_text
from robofleet.robots.schemas import RunFilter, RunOut
from robofleet.robots.service import RobotsService
from robofleet.robots.states import RunState
from robofleet.sessions.panel_evidence import evidence_of
from robofleet.web.context import get_context
from robofleet.web.deps import logs_of, robots_of
from robofleet.web.list_query import (
    PAGE_SIZES,
    WITHIN,
    FilterInvalid,
    every,
    one,
    page_size,
    paging_pairs,
    span_pairs,
    time_span,
)
from robofleet.web.security import Require
from robofleet.web.templating import page

router = APIRouter(prefix="/panel", include_in_schema=False)
READ = Depends(Require("robots:read", panel=True))
ORIGIN_TITLES = {
    Origin.USER: "an operator (panel)",
    Origin.TOKEN: "an API token",
    Origin.SCHEDULE: "a schedule",
    Origin.RESTART: "the restart policy",
    Origin.CLI: "the command line",
    Origin.SYSTEM: "robofleet itself",
}
OUTPUT_PAGE = 1000  # output records a run's page shows at once, oldest first; a link goes on from there
# The parts of a run's page, in order; each is a template given `run`, `output` and the page's context.
RUN_SECTIONS = ("run_summary.html", "run_output.html", "run_evidence.html")


@dataclass
class RunsQuery:
    """The runs page's filter as typed, with the paging: what the form shows and the links keep."""

    robot: str = ""
    states: list[str] = field(default_factory=list)
    agent: str = ""
    origins: list[str] = field(default_factory=list)
    by: str = ""
    within: str = ""
    since: str = ""
    until: str = ""
    limit: int = PAGE_SIZES[0]
    cursor: str = ""

    @classmethod
    def of(cls, params: Mapping[str, Any]) -> RunsQuery:
        """From a request's query parameters (a starlette QueryParams)."""
        return cls(
            robot=one(params, "robot", 64),
            states=every(params, "state")[:20],
            agent=one(params, "agent", 64),
            origins=every(params, "origin")[:20],
            by=one(params, "by", 128),
            within=one(params, "within"),
            since=one(params, "since", 40),
            until=one(params, "until", 40),
            limit=page_size(params),
            cursor=one(params, "cursor"),
        )

    @property
    def narrowed(self) -> bool:
        return bool(self.robot or self.states or self.agent or self.origins or self.by or self.within)

    def run_filter(self, now: datetime) -> RunFilter:
        """The RunFilter the query asks for; FilterInvalid naming each field it cannot read."""
        errors: dict[str, str] = {}
        known_states, known_origins = {state.value for state in RunState}, {origin.value for origin in Origin}
        wrong_state = [state for state in self.states if state not in known_states]
        if wrong_state:
            errors["state"] = f"unknown state {wrong_state[0]!r} (one of {', '.join(sorted(known_states))})"
        wrong_origin = [origin for origin in self.origins if origin not in known_origins]
        if wrong_origin:
            errors["origin"] = f"unknown origin {wrong_origin[0]!r} (one of {', '.join(sorted(known_origins))})"
        since, until = time_span(self.within, self.since, self.until, now, errors)
        if errors:
            raise FilterInvalid(errors)
        try:
            return RunFilter(
                robot=self.robot or None,
                state=[RunState(state) for state in self.states],
                agent=self.agent or None,
                since=since,
                until=until,
                origin=[Origin(origin) for origin in self.origins],
                requested_by=self.by or None,
            )
        except ValidationError as exc:
            raise FilterInvalid(
                {str(error["loc"][0]) if error["loc"] else "filter": error["msg"] for error in exc.errors()}
            ) from None

    def pairs(self, *, cursor: bool = False) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        for key, value in (("robot", self.robot), ("agent", self.agent), ("by", self.by)):
            if value:
                found.append((key, value))
        found += [("state", state) for state in self.states] + [("origin", origin) for origin in self.origins]
        found += span_pairs(self.within, self.since, self.until)
        return found + paging_pairs(self.limit, self.cursor, with_cursor=cursor)

    def query(self, *, cursor: bool = False) -> str:
        return urlencode(self.pairs(cursor=cursor))

    def with_cursor(self, cursor: str) -> str:
        return urlencode([*self.pairs(), ("cursor", cursor)])


@dataclass
class RunsListing:
    query: RunsQuery
    runs: list[RunOut]
    next_cursor: str | None
    errors: dict[str, str]


def runs_listing(service: RobotsService, principal: Principal, query: RunsQuery) -> RunsListing:
    try:
        where = query.run_filter(datetime.now(UTC))
    except FilterInvalid as exc:
        return RunsListing(query, [], None, exc.errors)
    try:
        found = service.list_runs(
            principal, robot=None, state=None, where=where, limit=query.limit, cursor=query.cursor or None
        )
    except Invalid as exc:  # a cursor this server did not hand out
        return RunsListing(query, [], None, {"cursor": exc.message})
    return RunsListing(query, found.items, found.next_cursor, {})


def _page(request: Request, template: str, principal: Principal, status: int = 200, **context: Any) -> Response:
    return page(
        request,
        template,
        principal,
        status=status,
        section="runs",
        duration=duration_text,
        describe=describe_actor,
        active=ACTIVE,
        **context,
    )


@router.get("/runs")
def runs_page(
    request: Request,
    principal: Principal = READ,
    ctx: Orchestrator = Depends(get_context),
    part: str | None = Query(None, max_length=20, description="rows: the table's body alone, for the refresh"),
) -> Response:
    service = robots_of(ctx)
    listing = runs_listing(service, principal, RunsQuery.of(request.query_params))
    if part == "rows":
        return _page(request, "runs_rows.html", principal, listing=listing)
    robots = service.list_robots(principal, limit=500, cursor=None).items
    agents = sorted({"local", *(robot.agent for robot in robots)})
    return _page(
        request,
        "runs.html",
        principal,
        status=422 if listing.errors else 200,
        listing=listing,
        robots=sorted(robot.name for robot in robots),
        agents=agents,
        states=list(RunState),
        origins=ORIGIN_TITLES,
        within=WITHIN,
        page_sizes=PAGE_SIZES,
    )


# ---- one run -------------------------------------------------------------------------------------------------------


@dataclass
class OutputEntry:
    """A part of a run's output as its page shows it: one record, or a traceback written over several records
    (one line each, as robots' stderr was stored line by line) gathered in one block."""

    id: int
    time: str
    level: str
    stream: str
    text: str
    traceback: bool = False


TRACEBACK_HEAD = "Traceback (most recent call last):"


def output_entries(records: list[dict[str, Any]]) -> list[OutputEntry]:
    """The records, oldest first, with each traceback one entry: the record that opens it, the indented records
    after it (its frames) and the first record not indented (its exception), when all of the same stream."""
    entries: list[OutputEntry] = []
    open_block: OutputEntry | None = None
    for record in records:
        message = str(record["message"])
        stream = str((record.get("fields") or {}).get("stream", ""))
        if open_block is not None and stream == open_block.stream:
            open_block.text += "\n" + message
            if message and not message[0].isspace():  # the exception line ends it
                open_block = None
            continue
        open_block = None
        entry = OutputEntry(
            record["id"], record["time"], record["level"], stream, message, traceback=TRACEBACK_HEAD in message
        )
        entries.append(entry)
        if message.rstrip() == TRACEBACK_HEAD:  # a traceback stored a line a record: the next ones belong to it
            open_block = entry
    return entries


@dataclass
class RunOutput:
    entries: list[OutputEntry]
    next_cursor: str | None
    allowed: bool  # the reader may read the run's logs
    last_id: int | None


def run_output(ctx: Orchestrator, principal: Principal, run: RunOut, cursor: str | None) -> RunOutput:
    """The run's output (its robot's records), oldest first, a page at a time, as the reader's logs:read allows."""
    if not principal.can("logs:read"):
        return RunOutput([], None, False, None)
    filters = narrowed(
        Filters(run_id=str(run.id), source="robot:*"), robots_of(ctx).robot_scope(principal, "logs:read")
    )
    logs = logs_of(ctx)
    found = logs.search(filters, limit=OUTPUT_PAGE, cursor=cursor, order="asc")
    items: list[dict[str, Any]] = list(found["items"])
    # Where the live tail goes on from: nothing written since this read is missed, nothing shown twice.
    last = items[-1]["id"] if items else logs.last_id() if run.state in ACTIVE else None
    return RunOutput(output_entries(items), found["next_cursor"], True, last)


@router.get("/runs/{run_id}")
def run_page(
    run_id: int,
    request: Request,
    principal: Principal = READ,
    ctx: Orchestrator = Depends(get_context),
    part: str | None = Query(None, max_length=20, description="summary (the facts and timeline) or evidence alone"),
    output: str | None = Query(None, max_length=200, description="the output page's cursor"),
) -> Response:
    if not 1 <= run_id <= 2**63 - 1:
        raise Invalid(f"no run {run_id}")
    run = robots_of(ctx).get_run(principal, run_id)
    if part == "summary":
        return _page(request, "run_summary.html", principal, run=run)
    if part == "evidence":
        return _page(request, "run_evidence.html", principal, run=run, evidence=evidence_of(ctx, principal, run))
    try:
        shown = run_output(ctx, principal, run, output)
    except RobofleetError:
        if output is None:
            raise
        shown = run_output(ctx, principal, run, None)  # a cursor this server did not hand out: from the start
    return _page(
        request,
        "run.html",
        principal,
        run=run,
        output=shown,
        sections=RUN_SECTIONS,
        evidence=evidence_of(ctx, principal, run),
    )
