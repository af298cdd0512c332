"""One pass of the detection: the facts other domains give (runs ended or active, agents offline, fires skipped by
a misfire policy, queues past their SLA), read from where the last pass stopped (stored cursors), turned into the
events each enabled rule raises. Nothing is written here: the service stores the events, their marks and the new
cursors in one transaction, so a pass cut short by a crash is read again and each event raised once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from robofleet.agents.offline import offline_since
from robofleet.alerts.kinds import MEDIAN_SAMPLE, RuleKind, matches, median_seconds, too_long
from robofleet.alerts.store_ops import RuleRef
from robofleet.queues.schemas import QueueStats
from robofleet.robots.run_facts import RunFact, restart_gave_up, run_window, success_durations
from robofleet.robots.states import RunState
from robofleet.schedules.missed import missed_fires
from robofleet.store import Store

# How far back a pass reads again past where the last one stopped: a run's end stored with a time a little before
# it committed is still seen. The marks (kept a day) make reading twice harmless.
OVERLAP = timedelta(minutes=10)
FAILED_STATES = (RunState.FAILED, RunState.LOST)


@dataclass(frozen=True)
class Event:
    rule: RuleRef
    subject: str
    key: str
    at: datetime
    title: str
    detail: str
    facts: dict[str, Any]


@dataclass
class Findings:
    events: list[Event] = field(default_factory=list)
    # Per rule id: the conditions that hold now, by key (queue past SLA); a mark of one no longer held is dropped.
    conditions: dict[int, dict[str, Event]] = field(default_factory=dict)
    cursors: dict[str, str] = field(default_factory=dict)


def _cursor(raw: str | None, now: datetime) -> tuple[int, datetime]:
    if raw:
        value = json.loads(raw)
        return int(value["low"]), datetime.fromisoformat(value["since"]) - OVERLAP
    return 0, now - OVERLAP


def _cursor_text(low: int, now: datetime) -> str:
    return json.dumps({"low": low, "since": now.isoformat()})


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else max((end - start).total_seconds(), 0.0)


def detect(
    store: Store,
    rules: list[RuleRef],
    cursors: dict[str, str | None],
    now: datetime,
    queue_figures: Callable[[], list[QueueStats]],
    connected_agents: frozenset[str] = frozenset(),
) -> Findings:
    """The events `rules` raise now (none of what happened before a rule was made); `cursors`: the stored cursors
    by source ("runs", "fires"); `connected_agents`: the agents connected to this replica now."""
    found = Findings()
    by_kind: dict[RuleKind, list[RuleRef]] = {}
    for rule in rules:
        by_kind.setdefault(rule.kind, []).append(rule)

    def after_creation(rule: RuleRef, at: datetime) -> bool:
        return at >= rule.created_at

    run_kinds = (RuleKind.RUN_FAILED, RuleKind.RESTART_GAVE_UP, RuleKind.RUN_TOO_LONG)
    low, since = _cursor(cursors.get("runs"), now)
    window = run_window(store, low, since) if any(kind in by_kind for kind in run_kinds) else None
    if window is not None:
        found.cursors["runs"] = _cursor_text(window.next_low, now)
        _run_events(store, window.ended, window.active, by_kind, now, after_creation, found)

    if RuleKind.AGENT_OFFLINE in by_kind:
        for agent, left in sorted(offline_since(store, connected_agents).items()):
            away = (now - left).total_seconds()
            for rule in by_kind[RuleKind.AGENT_OFFLINE]:
                if matches(rule.match, agent) and away >= (rule.threshold or 0) and after_creation(rule, now):
                    found.events.append(
                        Event(
                            rule,
                            agent,
                            f"offline:{left.isoformat()}",
                            now,
                            f"agent {agent} offline for {away:.0f} s",
                            f"Agent {agent} has been offline since {left:%Y-%m-%d %H:%M:%S} UTC.",
                            {"agent": agent, "offline_since": left.isoformat(), "seconds": round(away, 1)},
                        )
                    )

    if RuleKind.SCHEDULE_MISSED in by_kind:
        low, since = _cursor(cursors.get("fires"), now)
        missed = missed_fires(store, low, since)
        found.cursors["fires"] = _cursor_text(missed.next_low, now)
        for fire in missed.fires:
            for rule in by_kind[RuleKind.SCHEDULE_MISSED]:
                if matches(rule.match, fire.schedule) and after_creation(rule, fire.fired_at):
                    found.events.append(
                        Event(
                            rule,
                            fire.schedule,
                            f"fire:{fire.id}",
                            fire.fired_at,
                            f"schedule {fire.schedule} missed {fire.missed + 1} fire(s)",
                            fire.error or f"The fire planned at {fire.planned_at:%Y-%m-%d %H:%M:%S} UTC was skipped.",
                            {
                                "schedule": fire.schedule,
                                "planned_at": fire.planned_at.isoformat(),
                                "missed": fire.missed + 1,
                                "fire": fire.id,
                            },
                        )
                    )

    if RuleKind.QUEUE_PAST_SLA in by_kind:
        figures = queue_figures()
        for rule in by_kind[RuleKind.QUEUE_PAST_SLA]:
            holding = found.conditions.setdefault(rule.id, {})
            for stats in figures:
                if matches(rule.match, stats.queue) and stats.past_sla >= (rule.threshold or 1):
                    holding[f"queue:{stats.queue}"] = Event(
                        rule,
                        stats.queue,
                        f"queue:{stats.queue}",
                        now,
                        f"queue {stats.queue}: {stats.past_sla:,} item(s) past the SLA",
                        f"{stats.past_sla:,} unfinished item(s) of queue {stats.queue} are older than its SLA.",
                        {"queue": stats.queue, "past_sla": stats.past_sla},
                    )
    return found


def _run_events(
    store: Store,
    ended: list[RunFact],
    active: list[RunFact],
    by_kind: dict[RuleKind, list[RuleRef]],
    now: datetime,
    after_creation: Callable[[RuleRef, datetime], bool],
    found: Findings,
) -> None:
    for run in ended:
        assert run.ended_at is not None
        if run.state in FAILED_STATES:
            for rule in by_kind.get(RuleKind.RUN_FAILED, []):
                if matches(rule.match, run.robot) and after_creation(rule, run.ended_at):
                    reason = run.error or (f"exit {run.exit_code}" if run.exit_code is not None else run.state.value)
                    found.events.append(
                        Event(
                            rule,
                            run.robot,
                            f"run:{run.id}",
                            run.ended_at,
                            f"run {run.id} of {run.robot} {run.state.value}",
                            f"Run {run.id} of robot {run.robot} on agent {run.agent} ended {run.state.value}: "
                            f"{reason}.",
                            _run_facts(run),
                        )
                    )
        if run.state == RunState.FAILED:
            for rule in by_kind.get(RuleKind.RESTART_GAVE_UP, []):
                if matches(rule.match, run.robot) and after_creation(rule, run.ended_at):
                    gave_up = restart_gave_up(store, run.robot, run.ended_at)
                    if gave_up is not None:
                        found.events.append(
                            Event(
                                rule,
                                run.robot,
                                f"gave_up:{run.id}",
                                run.ended_at,
                                f"restarts of {run.robot} gave up",
                                f"Robot {run.robot} failed {gave_up.failures} times within "
                                f"{gave_up.window_seconds:g} s (run {run.id}): its restart policy gave up until a "
                                "manual start.",
                                {**_run_facts(run), "failures": gave_up.failures},
                            )
                        )
    long_rules = by_kind.get(RuleKind.RUN_TOO_LONG, [])
    if not long_rules:
        return
    candidates = [run for run in active if run.started_at is not None] + [
        run for run in ended if run.state in (RunState.SUCCEEDED, RunState.FAILED) and run.started_at is not None
    ]
    robots = sorted({run.robot for run in candidates if any(matches(rule.match, run.robot) for rule in long_rules)})
    medians = {
        robot: median_seconds(durations) for robot, durations in success_durations(store, robots, MEDIAN_SAMPLE).items()
    }
    for run in candidates:
        seconds = _seconds(run.started_at, run.ended_at or now)
        median = medians.get(run.robot)
        if seconds is None or median is None:
            continue
        for rule in long_rules:
            factor = rule.threshold or 2.0
            if matches(rule.match, run.robot) and too_long(seconds, median, factor) and after_creation(rule, now):
                found.events.append(
                    Event(
                        rule,
                        run.robot,
                        f"long:{run.id}",
                        now,
                        f"run {run.id} of {run.robot} is taking too long",
                        f"Run {run.id} of robot {run.robot} {'took' if run.ended_at else 'has run for'} "
                        f"{seconds:.0f} s, more than {factor:g} x the median of its recent successful runs "
                        f"({median:.1f} s).",
                        {**_run_facts(run), "seconds": round(seconds, 1), "median_seconds": round(median, 1)},
                    )
                )


def _run_facts(run: RunFact) -> dict[str, Any]:
    return {
        "run": run.id,
        "robot": run.robot,
        "agent": run.agent,
        "state": run.state.value,
        "exit_code": run.exit_code,
        "error": run.error,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "ended_at": run.ended_at.isoformat() if run.ended_at else None,
    }
