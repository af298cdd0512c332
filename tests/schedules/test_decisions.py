"""The engine's pure decisions, on a clock the test sets: what a pass does with the fires that fell due (misfire
policies), and which run-event chains come back on themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from robofleet.schedules.calendars import Calendar
from robofleet.schedules.chains import cycle_through, edge_of
from robofleet.schedules.engine import MisfirePlan, due_slots, misfire_plan
from robofleet.schedules.triggers import parse_trigger

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
S = timedelta(seconds=1)


def test_a_fire_on_time_fires_under_either_policy() -> None:
    for policy in ("skip", "run_once"):
        assert misfire_plan([T0], T0 + 0.2 * S, policy, 60) == MisfirePlan(T0, 0, ())


def test_skip_records_the_late_fires_as_one_and_fires_one_still_within_grace() -> None:
    slots = [T0 + n * S for n in range(10)]
    now = T0 + 9.5 * S
    plan = misfire_plan(slots, now, "skip", 2)
    assert plan.fire == T0 + 9 * S and plan.fire_missed == 1  # 8 s and 9 s are within 2 s: one fire for both
    assert plan.skipped == tuple(slots[:8])
    assert misfire_plan(slots, T0 + 100 * S, "skip", 2) == MisfirePlan(None, 0, tuple(slots))


def test_run_once_makes_every_missed_fire_one_however_late() -> None:
    slots = [T0 + n * S for n in range(10)]
    assert misfire_plan(slots, T0 + 3600 * S, "run_once", 2) == MisfirePlan(T0 + 9 * S, 9, ())


def test_due_slots_are_every_fire_up_to_now_with_calendars_applied() -> None:
    every_day = parse_trigger({"kind": "cron", "expression": "0 0 10 * * *"}, "Europe/Berlin")
    first = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    closed = Calendar("closed", dates=frozenset({datetime(2026, 3, 4).date()}))
    slots = due_slots(every_day, first, first + timedelta(days=4, hours=1), ZoneInfo("Europe/Berlin"), [closed])
    assert [slot.day for slot in slots] == [2, 3, 5, 6]


def test_a_chain_that_comes_back_to_its_start_is_a_cycle() -> None:
    edges = [("a", "b"), ("b", "c"), ("x", "y")]
    assert cycle_through(edges, ("c", "a")) == ["c", "a", "b", "c"]
    assert cycle_through(edges, ("a", "a")) == ["a", "a"]
    assert cycle_through(edges, ("c", "d")) is None
    assert cycle_through(edges, ("y", "b")) is None
    run_event = {"kind": "run_event", "robot": "a", "on": "succeeded"}
    assert edge_of(run_event, "robots.start", {"name": "b"}) == ("a", "b")
    assert edge_of(run_event, "system.echo", {"message": "b"}) is None
    assert edge_of({"kind": "cron", "expression": "* * * * * *"}, "robots.start", {"name": "b"}) is None
