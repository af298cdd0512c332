"""The dashboard, the panel's home: how the fleet is doing at a glance. Runs today by outcome, each robot's success
rate over 24 hours and 7 days, recent failures with their reasons, the runs going on (the late ones marked) and
the longest of the day, the agents online and offline, and the last 24 hours as a chart of runs by outcome, drawn
here as SVG (no chart library, nothing inline: the panel's CSP is default-src 'self').

Every figure counts only the runs of robots the viewer may read (RobotsService.dashboard), and the agents only for
those who may list agents. dashboard.js refreshes the figures (?part=figures) when a run changes (the runs stream)
and every 30 s while the page is visible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from robofleet.agents import roster
from robofleet.auth.principal import Principal
from robofleet.orchestrator import Orchestrator
from robofleet.robots.models import ACTIVE
from robofleet.robots.run_stats import Dashboard, HourCounts
from robofleet.robots.states import RunState
from robofleet.web.context import get_context
from robofleet.web.deps import robots_of
from robofleet.web.security import Require
from robofleet.web.templating import page

router = APIRouter(prefix="/panel", include_in_schema=False)
REFRESH_SECONDS = 30

# The chart's outcomes, bottom up: a run still going counts as "active" in the hour it was created.
OUTCOMES: tuple[str, ...] = ("succeeded", "failed", "killed", "lost", "stopped", "active")
CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 480, 120, 2


@dataclass(frozen=True)
class Segment:
    outcome: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Bar:
    label: str  # "14:00 to 15:00 UTC: 3 succeeded, 1 failed"
    x: float
    width: float
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    peak: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # x and "HH:00" every 6 hours
    totals: dict[str, int]  # by outcome over the 24 hours

    @property
    def summary(self) -> str:
        counted = ", ".join(f"{count} {outcome}" for outcome, count in self.totals.items() if count)
        return f"Runs per hour over the last 24 hours: {counted or 'none'}"


def outcome_of(state: str) -> str:
    return "active" if state in ACTIVE else state


def draw_hours(hours: list[HourCounts], width: int = CHART_WIDTH, height: int = CHART_HEIGHT) -> Chart:
    """The hours as stacked bars `width` by `height` units, the busiest hour's bar full height."""
    grouped: list[dict[str, int]] = []
    for hour in hours:
        counts = dict.fromkeys(OUTCOMES, 0)
        for state, count in hour.counts.items():
            counts[outcome_of(state)] += count
        grouped.append(counts)
    peak = max((sum(counts.values()) for counts in grouped), default=0)
    slot = width / max(len(hours), 1)
    bars, ticks = [], []
    for index, (hour, counts) in enumerate(zip(hours, grouped, strict=True)):
        x = index * slot
        segments, top = [], float(height)
        for outcome in OUTCOMES:
            if not counts[outcome]:
                continue
            tall = height * counts[outcome] / peak
            top -= tall
            segments.append(Segment(outcome, x + BAR_GAP / 2, round(top, 2), slot - BAR_GAP, round(tall, 2)))
        said = ", ".join(f"{counts[outcome]} {outcome}" for outcome in OUTCOMES if counts[outcome]) or "no runs"
        label = f"{hour.start:%H}:00 to {(hour.start.hour + 1) % 24:02d}:00 UTC: {said}"
        bars.append(Bar(label, x, slot, segments))
        if hour.start.hour % 6 == 0:
            ticks.append((x, f"{hour.start:%H}:00"))
    totals = {outcome: sum(counts[outcome] for counts in grouped) for outcome in OUTCOMES}
    return Chart(width, height, peak, bars, ticks, totals)


def today_outcomes(figures: Dashboard) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for state, count in figures.today.items():
        counts[outcome_of(state)] += count
    return counts


def agents_of(ctx: Orchestrator, principal: Principal) -> list[dict[str, Any]] | None:
    """Every known agent, online or offline (agents/roster.py), for those who may list agents; else None."""
    if not principal.can("agents:read"):
        return None
    return roster.overview(ctx.store, ctx.hub) if ctx.hub else []


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    part: str | None = Query(None, pattern="^figures$"),
    principal: Principal = Depends(Require("robots:read", panel=True)),
    ctx: Orchestrator = Depends(get_context),
) -> Response:
    figures = robots_of(ctx).dashboard(principal)
    agents = agents_of(ctx, principal)
    response = page(
        request,
        "dashboard_figures.html" if part else "dashboard.html",
        principal,
        section="dashboard",
        figures=figures,
        chart=draw_hours(figures.hours),
        today=today_outcomes(figures),
        outcomes=OUTCOMES,
        states=[state.value for state in RunState],
        agents=agents,
        online=None if agents is None else [agent for agent in agents if agent["online"]],
        refresh_seconds=REFRESH_SECONDS,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
