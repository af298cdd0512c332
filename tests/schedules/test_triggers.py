"""When each kind of trigger fires: cron (with seconds), interval, once, weekly windows and run events, across
daylight-saving changes in Europe/Berlin and America/New_York, leap days and month ends; and every kind of bad
trigger refused with the field at fault. Pure: a fixed `after`, no clock, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from robofleet.schedules.triggers import (
    IntervalTrigger,
    RunEventTrigger,
    Trigger,
    TriggerError,
    WindowTrigger,
    parse_trigger,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(text: str) -> datetime:
    """An instant written in UTC: "2027-03-28 01:00"."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: str, fold: int = 0) -> datetime:
    """An instant written as a local time in `zone` (fold=1: the second pass of a repeated hour)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold)


def fires(trigger: Trigger, after: datetime, count: int) -> list[datetime]:
    found: list[datetime] = []
    for _ in range(count):
        fire = trigger.next_fire(after)
        if fire is None:
            break
        found.append(fire)
        after = fire
    return found


def cron(expression: str, zone: str = BERLIN) -> Trigger:
    return parse_trigger({"kind": "cron", "expression": expression}, zone)


def window(days: list[str], start: str, end: str, zone: str = BERLIN) -> WindowTrigger:
    trigger = parse_trigger({"kind": "window", "days": days, "start": start, "end": end}, zone)
    assert isinstance(trigger, WindowTrigger)
    return trigger


# Cron


def test_a_weekday_cron_fires_at_the_local_time_on_weekdays_only() -> None:
    trigger = cron("0 30 7 * * mon-fri")
    # Friday 8 January 2027, after 07:30 Berlin: the next is Monday 11 January, 07:30 CET = 06:30 UTC.
    assert fires(trigger, local("2027-01-08 08:00", BERLIN), 3) == [
        utc("2027-01-11 06:30"),
        utc("2027-01-12 06:30"),
        utc("2027-01-13 06:30"),
    ]
    # In summer the same local time is an hour earlier in UTC.
    assert trigger.next_fire(utc("2027-07-05 00:00")) == utc("2027-07-05 05:30")


def test_a_five_field_cron_has_no_seconds_and_a_six_field_cron_has_seconds_first() -> None:
    assert cron("30 7 * * *").next_fire(utc("2027-01-08 12:00")) == utc("2027-01-09 06:30")
    every_20_seconds = cron("*/20 * * * * *", "UTC")
    assert fires(every_20_seconds, utc("2027-01-08 12:00:05"), 3) == [
        utc("2027-01-08 12:00:20"),
        utc("2027-01-08 12:00:40"),
        utc("2027-01-08 12:01:00"),
    ]
    assert cron("15 0 9 * * *", "UTC").next_fire(utc("2027-01-08 12:00")) == utc("2027-01-09 09:00:15")


def test_the_next_fire_is_strictly_after_and_answers_are_utc_whatever_zone_comes_in() -> None:
    trigger = cron("0 * * * * *", "UTC")
    assert trigger.next_fire(utc("2027-01-08 12:00")) == utc("2027-01-08 12:01")
    assert trigger.next_fire(utc("2027-01-08 12:00:00.000001")) == utc("2027-01-08 12:01")
    assert trigger.next_fire(utc("2027-01-08 11:59:59.999999")) == utc("2027-01-08 12:00")
    from_new_york = cron("0 30 7 * * *").next_fire(local("2027-01-08 00:00", NEW_YORK))
    assert from_new_york == utc("2027-01-08 06:30")  # 00:00 in New York is 06:00 in Berlin
    assert from_new_york is not None and from_new_york.tzinfo is UTC


def test_a_cron_on_29_february_waits_for_the_next_leap_year() -> None:
    trigger = cron("0 0 12 29 2 *")
    assert fires(trigger, utc("2027-03-01 00:00"), 3) == [
        utc("2028-02-29 11:00"),
        utc("2032-02-29 11:00"),
        utc("2036-02-29 11:00"),
    ]


def test_a_cron_on_the_31st_skips_shorter_months_and_l_means_the_last_day() -> None:
    assert fires(cron("0 0 12 31 * *", "UTC"), utc("2027-04-01 00:00"), 3) == [
        utc("2027-05-31 12:00"),
        utc("2027-07-31 12:00"),
        utc("2027-08-31 12:00"),
    ]
    assert fires(cron("0 0 L * *", "UTC"), utc("2028-01-31 12:00"), 2) == [
        utc("2028-02-29 00:00"),
        utc("2028-03-31 00:00"),
    ]


def test_a_weekday_range_with_a_step_and_a_list() -> None:
    trigger = cron("0 0 9 * * mon-fri/2,sun", "UTC")  # mon, wed, fri and sun
    days = [fire.strftime("%a %d") for fire in fires(trigger, utc("2027-01-03 12:00"), 5)]
    assert days == ["Mon 04", "Wed 06", "Fri 08", "Sun 10", "Mon 11"]


# Cron and daylight saving


def test_berlin_a_daily_fire_in_the_spring_gap_happens_at_the_gap_end() -> None:
    # 28 March 2027: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist that day.
    trigger = cron("0 30 2 * * *")
    assert fires(trigger, local("2027-03-27 12:00", BERLIN), 3) == [
        utc("2027-03-28 01:00"),  # 03:00 CEST, the gap's end
        utc("2027-03-29 00:30"),  # 02:30 CEST
        utc("2027-03-30 00:30"),
    ]


def test_berlin_fires_planned_inside_the_gap_collapse_into_one_at_its_end() -> None:
    trigger = cron("*/15 * * * *")
    assert fires(trigger, local("2027-03-28 01:40", BERLIN), 4) == [
        local("2027-03-28 01:45", BERLIN),
        utc("2027-03-28 01:00"),  # 02:00, 02:15, 02:30, 02:45 and 03:00 local: one fire at 03:00 CEST
        local("2027-03-28 03:15", BERLIN),
        local("2027-03-28 03:30", BERLIN),
    ]


def test_berlin_a_daily_fire_in_the_repeated_hour_fires_once_at_the_first_pass() -> None:
    # 31 October 2027: 03:00 CEST falls back to 02:00 CET (at 01:00 UTC); 02:30 happens twice.
    trigger = cron("0 30 2 * * *")
    assert fires(trigger, local("2027-10-30 12:00", BERLIN), 2) == [
        utc("2027-10-31 00:30"),  # 02:30 CEST, the first pass
        utc("2027-11-01 01:30"),  # 02:30 CET the next day; not 01:30 UTC on the 31st, the second pass
    ]
    second_pass = local("2027-10-31 02:10", BERLIN, fold=1)
    assert second_pass.astimezone(UTC) == utc("2027-10-31 01:10")  # aware times in a fold compare unequal across zones
    assert trigger.next_fire(second_pass) == utc("2027-11-01 01:30")


def test_berlin_nothing_fires_during_the_second_pass_of_the_repeated_hour() -> None:
    trigger = cron("*/30 * * * *")
    assert fires(trigger, local("2027-10-31 01:40", BERLIN), 4) == [
        utc("2027-10-31 00:00"),  # 02:00 CEST
        utc("2027-10-31 00:30"),  # 02:30 CEST
        utc("2027-10-31 02:00"),  # 03:00 CET: 02:00 and 02:30 CET were the same local times
        utc("2027-10-31 02:30"),
    ]
    # Asked from within the second pass, it looks past it.
    assert trigger.next_fire(utc("2027-10-31 01:05")) == utc("2027-10-31 02:00")
    assert trigger.next_fire(utc("2027-10-31 01:59:59")) == utc("2027-10-31 02:00")


def test_new_york_gap_and_repeat() -> None:
    # 14 March 2027: 02:00 EST jumps to 03:00 EDT (07:00 UTC). 7 November 2027: 02:00 EDT falls back to 01:00 EST.
    gap = cron("0 30 2 * * *", NEW_YORK)
    assert fires(gap, local("2027-03-13 12:00", NEW_YORK), 2) == [utc("2027-03-14 07:00"), utc("2027-03-15 06:30")]
    repeat = cron("0 30 1 * * *", NEW_YORK)
    assert fires(repeat, local("2027-11-06 12:00", NEW_YORK), 2) == [
        utc("2027-11-07 05:30"),  # 01:30 EDT, the first pass
        utc("2027-11-08 06:30"),  # 01:30 EST the next day
    ]
    hourly = cron("0 * * * *", NEW_YORK)
    assert fires(hourly, local("2027-11-07 00:30", NEW_YORK), 3) == [
        utc("2027-11-07 05:00"),  # 01:00 EDT
        utc("2027-11-07 07:00"),  # 02:00 EST: 01:00 EST, the second pass, does not fire
        utc("2027-11-07 08:00"),
    ]


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
def test_a_year_of_night_fires_in_both_zones_fires_each_local_time_once(zone: str) -> None:
    # 01:30, 02:30 and 03:30 every night of 2027 cross both changes of each zone: every night keeps its three
    # fires (the one in the gap moves to the gap's end), and no local time fires twice.
    trigger = cron("0 30 1,2,3 * * *", zone)
    tz = ZoneInfo(zone)
    found = fires(trigger, local("2027-01-01 00:00", zone), 3 * 366)
    year = [fire for fire in found if fire.astimezone(tz).year == 2027]
    assert len(year) == 3 * 365
    assert year == sorted(year)
    walls = [fire.astimezone(tz).replace(tzinfo=None, fold=0) for fire in year]
    assert len(set(walls)) == len(walls)
    moved = [wall for wall in walls if wall.minute != 30]
    gap_day = {BERLIN: datetime(2027, 3, 28, 3), NEW_YORK: datetime(2027, 3, 14, 3)}[zone]
    assert moved == [gap_day]
    assert all(wall.hour in (1, 2, 3) for wall in walls)


def test_cron_spec_is_normalised() -> None:
    assert cron("  0 30 7  * * mon-fri ").spec() == {"kind": "cron", "expression": "0 30 7 * * mon-fri"}


# Interval


def test_an_interval_steps_on_a_grid_anchored_at_1970_so_a_restart_does_not_shift_it() -> None:
    trigger = parse_trigger({"kind": "interval", "seconds": 90}, BERLIN)
    assert trigger.next_fire(utc("2027-01-08 12:00:10")) == utc("2027-01-08 12:01:30")
    # Asked again from any moment (as after a restart), the answers stay on the same grid.
    assert trigger.next_fire(utc("2027-01-08 12:01:29.5")) == utc("2027-01-08 12:01:30")
    assert trigger.next_fire(utc("2027-01-08 12:01:30")) == utc("2027-01-08 12:03:00")
    assert trigger.spec() == {"kind": "interval", "seconds": 90}


def test_an_interval_with_a_start_fires_first_at_the_start() -> None:
    spec = {"kind": "interval", "seconds": 600, "start": "2027-01-08T09:05:00+01:00"}
    trigger = parse_trigger(spec, BERLIN)
    assert trigger.next_fire(utc("2027-01-01 00:00")) == utc("2027-01-08 08:05")
    assert trigger.next_fire(utc("2027-01-08 08:05")) == utc("2027-01-08 08:15")
    assert trigger.next_fire(utc("2027-01-08 09:00:01")) == utc("2027-01-08 09:05")
    assert trigger.spec() == spec


def test_an_interval_ignores_daylight_saving() -> None:
    trigger = parse_trigger({"kind": "interval", "seconds": 3600}, BERLIN)
    found = fires(trigger, utc("2027-03-27 23:30"), 4)
    assert found == [utc("2027-03-28 00:00"), utc("2027-03-28 01:00"), utc("2027-03-28 02:00"), utc("2027-03-28 03:00")]
    half_second = parse_trigger({"kind": "interval", "seconds": 1.5}, "UTC")
    assert half_second.next_fire(utc("2027-01-01 00:00")) == utc("2027-01-01 00:00:01.5")
    assert half_second.spec() == {"kind": "interval", "seconds": 1.5}
    assert isinstance(half_second, IntervalTrigger)


# Once


def test_once_fires_at_its_time_and_never_again() -> None:
    trigger = parse_trigger({"kind": "once", "at": "2027-01-01T09:00:00+01:00"}, NEW_YORK)
    assert trigger.next_fire(utc("2026-12-31 00:00")) == utc("2027-01-01 08:00")
    assert trigger.next_fire(utc("2027-01-01 08:00")) is None
    assert trigger.next_fire(utc("2027-06-01 00:00")) is None  # in the past
    assert trigger.spec() == {"kind": "once", "at": "2027-01-01T09:00:00+01:00"}
    assert parse_trigger({"kind": "once", "at": "2027-01-01T08:00:00Z"}, BERLIN).next_fire(
        utc("2026-01-01 00:00")
    ) == utc("2027-01-01 08:00")


# Windows


def test_a_window_starts_on_its_days_at_the_local_start() -> None:
    office = window(["mon", "tue", "wed", "thu", "fri"], "09:00", "18:00")
    # Saturday 9 January 2027: the next window opens Monday 09:00 CET.
    assert office.next_fire(local("2027-01-09 10:00", BERLIN)) == utc("2027-01-11 08:00")
    # Inside a window, the next start is tomorrow's.
    assert office.next_fire(local("2027-01-11 10:00", BERLIN)) == utc("2027-01-12 08:00")
    assert office.next_fire(local("2027-01-11 09:00", BERLIN)) == utc("2027-01-12 08:00")
    assert office.next_fire(local("2027-01-11 08:59:59", BERLIN)) == utc("2027-01-11 08:00")


def test_window_at_says_which_window_holds_a_moment_and_ends_are_outside() -> None:
    office = window(["mon", "fri"], "09:00", "18:00")
    monday = (utc("2027-01-11 08:00"), utc("2027-01-11 17:00"))
    assert office.window_at(local("2027-01-11 09:00", BERLIN)) == monday
    assert office.window_at(local("2027-01-11 17:59:59", BERLIN)) == monday
    assert office.window_at(local("2027-01-11 18:00", BERLIN)) is None
    assert office.window_at(local("2027-01-11 08:59", BERLIN)) is None
    assert office.window_at(local("2027-01-12 10:00", BERLIN)) is None  # a Tuesday
    # Any zone in: 03:30 in New York is 09:30 in Berlin.
    assert office.window_at(local("2027-01-11 03:30", NEW_YORK)) == monday


def test_windows_at_midnight_boundaries() -> None:
    all_day = window(["mon", "tue"], "00:00", "24:00")
    monday = (utc("2027-01-10 23:00"), utc("2027-01-11 23:00"))
    tuesday = (utc("2027-01-11 23:00"), utc("2027-01-12 23:00"))
    assert all_day.window_at(local("2027-01-11 00:00", BERLIN)) == monday
    assert all_day.window_at(local("2027-01-10 23:59:59", BERLIN)) is None  # Sunday
    assert all_day.window_at(local("2027-01-11 23:59:59", BERLIN)) == monday
    assert all_day.window_at(local("2027-01-12 00:00", BERLIN)) == tuesday
    assert all_day.window_at(local("2027-01-13 00:00", BERLIN)) is None  # Wednesday
    assert all_day.next_fire(local("2027-01-11 12:00", BERLIN)) == tuesday[0]
    assert all_day.spec() == {"kind": "window", "days": ["mon", "tue"], "start": "00:00", "end": "24:00"}
    late = window(["sun"], "22:00", "24:00", NEW_YORK)
    assert late.window_at(local("2027-01-10 23:30", NEW_YORK)) == (utc("2027-01-11 03:00"), utc("2027-01-11 05:00"))
    assert late.window_at(local("2027-01-11 00:00", NEW_YORK)) is None


def test_window_at_across_daylight_saving_days() -> None:
    # Sunday 28 March 2027 in Berlin: 01:00-04:00 local lasts two hours.
    night = window(["sun"], "01:00", "04:00")
    spring = (utc("2027-03-28 00:00"), utc("2027-03-28 02:00"))
    assert night.window_at(utc("2027-03-28 00:59")) == spring
    assert night.window_at(utc("2027-03-28 01:00")) == spring  # 03:00 CEST
    assert night.window_at(utc("2027-03-28 02:00")) is None
    # Sunday 31 October 2027: the same local window lasts four hours.
    autumn = (utc("2027-10-30 23:00"), utc("2027-10-31 03:00"))
    assert night.window_at(local("2027-10-31 02:30", BERLIN, fold=1)) == autumn
    assert night.window_at(utc("2027-10-31 02:59")) == autumn
    # New York, Sunday 7 November 2027, 00:00-09:00 local: ten hours.
    new_york = window(["sun"], "00:00", "09:00", NEW_YORK)
    assert new_york.window_at(utc("2027-11-07 05:30")) == (utc("2027-11-07 04:00"), utc("2027-11-07 14:00"))
    assert new_york.window_at(utc("2027-11-07 06:30")) == (utc("2027-11-07 04:00"), utc("2027-11-07 14:00"))
    # An end in the repeated hour is its first pass, like a start; an end in a gap is the gap's end.
    repeated_end = window(["sun"], "00:00", "01:30", NEW_YORK)
    assert repeated_end.window_at(utc("2027-11-07 05:00")) == (utc("2027-11-07 04:00"), utc("2027-11-07 05:30"))
    assert repeated_end.window_at(utc("2027-11-07 06:00")) is None  # 01:00 EST, the second pass
    gap_end = window(["sun"], "01:00", "02:30", NEW_YORK)
    assert gap_end.window_at(utc("2027-03-14 06:30")) == (utc("2027-03-14 06:00"), utc("2027-03-14 07:00"))


def test_a_window_starting_in_a_gap_opens_at_its_end_and_one_inside_a_gap_is_skipped() -> None:
    from_gap = window(["sun"], "02:30", "05:00")
    assert from_gap.next_fire(utc("2027-03-27 12:00")) == utc("2027-03-28 01:00")  # 03:00 CEST
    assert from_gap.window_at(utc("2027-03-28 01:00")) == (utc("2027-03-28 01:00"), utc("2027-03-28 03:00"))
    inside_gap = window(["sun"], "02:00", "02:45")
    assert inside_gap.window_at(utc("2027-03-28 01:00")) is None
    assert inside_gap.next_fire(utc("2027-03-27 12:00")) == utc("2027-04-04 00:00")  # the next Sunday, 02:00 CEST


def test_a_window_starting_in_the_repeated_hour_opens_at_the_first_pass() -> None:
    repeated = window(["sun"], "01:30", "06:00", NEW_YORK)
    assert repeated.next_fire(utc("2027-11-06 12:00")) == utc("2027-11-07 05:30")  # 01:30 EDT
    assert repeated.next_fire(utc("2027-11-07 06:30")) == utc("2027-11-14 06:30")  # not the second pass: next week


def test_window_spec_is_normalised() -> None:
    trigger = window(["FRI", "mon", "mon"], "9:00", "17:30:15")
    assert trigger.spec() == {"kind": "window", "days": ["mon", "fri"], "start": "09:00", "end": "17:30:15"}


# Run events


def test_a_run_event_trigger_matches_its_robot_and_outcome_and_never_fires_by_the_clock() -> None:
    succeeded = parse_trigger({"kind": "run_event", "robot": "a", "on": "succeeded"}, BERLIN)
    assert isinstance(succeeded, RunEventTrigger)
    assert succeeded.next_fire(utc("2027-01-01 00:00")) is None
    assert succeeded.matches("a", "succeeded")
    assert not succeeded.matches("a", "failed")
    assert not succeeded.matches("b", "succeeded")
    ended = RunEventTrigger("a", "ended")
    assert all(ended.matches("a", state) for state in ("succeeded", "failed", "stopped", "killed", "lost"))
    assert not any(ended.matches("a", state) for state in ("queued", "starting", "running", "paused", "stopping"))
    assert succeeded.spec() == {"kind": "run_event", "robot": "a", "on": "succeeded"}


def test_every_spec_parses_back_to_an_equal_trigger() -> None:
    specs: list[dict[str, Any]] = [
        {"kind": "cron", "expression": "0 30 7 * * mon-fri"},
        {"kind": "interval", "seconds": 90},
        {"kind": "interval", "seconds": 90, "start": "2027-01-01T00:00:00+01:00"},
        {"kind": "once", "at": "2027-01-01T09:00:00+01:00"},
        {"kind": "window", "days": ["mon", "fri"], "start": "09:00", "end": "18:00"},
        {"kind": "run_event", "robot": "a", "on": "ended"},
    ]
    for spec in specs:
        trigger = parse_trigger(spec, BERLIN)
        assert trigger.kind == spec["kind"]
        assert trigger.spec() == spec
        assert parse_trigger(trigger.spec(), BERLIN) == trigger


def test_a_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cron("* * * * *").next_fire(datetime(2027, 1, 1))  # naive on purpose


# Bad input


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ("cron", "trigger"),
        ({}, "trigger.kind"),
        ({"kind": "hourly"}, "trigger.kind"),
        ({"kind": "cron"}, "trigger.expression"),
        ({"kind": "cron", "expression": ""}, "trigger.expression"),
        ({"kind": "cron", "expression": 5}, "trigger.expression"),
        ({"kind": "cron", "expression": "* * * *"}, "trigger.expression"),
        ({"kind": "cron", "expression": "0 0 7 * * * 2030"}, "trigger.expression"),
        ({"kind": "cron", "expression": "@daily"}, "trigger.expression"),
        ({"kind": "cron", "expression": "61 * * * *"}, "trigger.expression"),
        ({"kind": "cron", "expression": "0 60 * * * *"}, "trigger.expression"),
        ({"kind": "cron", "expression": "0 0 * * xyz"}, "trigger.expression"),
        ({"kind": "cron", "expression": "0 0 31 2 *"}, "trigger.expression"),
        ({"kind": "cron", "expression": "R * * * *"}, "trigger.expression"),
        ({"kind": "cron", "expression": "H * * * *"}, "trigger.expression"),
        ({"kind": "cron", "expression": "* * * * *", "seconds": 5}, "trigger.seconds"),
        ({"kind": "interval"}, "trigger.seconds"),
        ({"kind": "interval", "seconds": 0}, "trigger.seconds"),
        ({"kind": "interval", "seconds": -5}, "trigger.seconds"),
        ({"kind": "interval", "seconds": 366 * 86400 + 1}, "trigger.seconds"),
        ({"kind": "interval", "seconds": "90"}, "trigger.seconds"),
        ({"kind": "interval", "seconds": 10**30}, "trigger.seconds"),
        ({"kind": "interval", "seconds": 1e-9}, "trigger.seconds"),
        ({"kind": "interval", "seconds": True}, "trigger.seconds"),
        ({"kind": "interval", "seconds": float("nan")}, "trigger.seconds"),
        ({"kind": "interval", "seconds": float("inf")}, "trigger.seconds"),
        ({"kind": "interval", "seconds": 60, "start": "2027-01-01T00:00:00"}, "trigger.start"),
        ({"kind": "interval", "seconds": 60, "start": "soon"}, "trigger.start"),
        ({"kind": "once"}, "trigger.at"),
        ({"kind": "once", "at": "2027-01-01T09:00:00"}, "trigger.at"),
        ({"kind": "once", "at": "next tuesday"}, "trigger.at"),
        ({"kind": "once", "at": "2027-02-30T09:00:00Z"}, "trigger.at"),
        ({"kind": "window", "days": ["mon"], "start": "18:00", "end": "09:00"}, "trigger.end"),
        ({"kind": "window", "days": ["mon"], "start": "09:00", "end": "09:00"}, "trigger.end"),
        ({"kind": "window", "days": ["mon"], "start": "09:00", "end": "25:00"}, "trigger.end"),
        ({"kind": "window", "days": ["mon"], "start": "9h", "end": "18:00"}, "trigger.start"),
        ({"kind": "window", "days": ["mon"], "start": "24:00", "end": "24:00"}, "trigger.start"),
        ({"kind": "window", "days": ["mon"], "start": "09:00"}, "trigger.end"),
        ({"kind": "window", "days": ["mo"], "start": "09:00", "end": "18:00"}, "trigger.days"),
        ({"kind": "window", "days": ["monday"], "start": "09:00", "end": "18:00"}, "trigger.days"),
        ({"kind": "window", "days": [], "start": "09:00", "end": "18:00"}, "trigger.days"),
        ({"kind": "window", "days": "mon", "start": "09:00", "end": "18:00"}, "trigger.days"),
        ({"kind": "run_event", "on": "succeeded"}, "trigger.robot"),
        ({"kind": "run_event", "robot": " ", "on": "succeeded"}, "trigger.robot"),
        ({"kind": "run_event", "robot": "a", "on": "started"}, "trigger.on"),
    ],
)
def test_bad_triggers_are_refused_with_the_field(spec: Any, field: str) -> None:
    with pytest.raises(TriggerError) as refused:
        parse_trigger(spec, BERLIN)
    assert refused.value.field == field
    assert refused.value.message
    assert isinstance(refused.value, ValueError)


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "berlin", "../../etc/passwd", "/etc/localtime", None])
def test_an_unknown_timezone_is_refused(zone: Any) -> None:
    with pytest.raises(TriggerError) as refused:
        parse_trigger({"kind": "interval", "seconds": 60}, zone)
    assert refused.value.field == "timezone"


def test_the_timezone_is_checked_for_every_kind() -> None:
    assert parse_trigger({"kind": "run_event", "robot": "a", "on": "failed"}, "UTC").kind == "run_event"
    with pytest.raises(TriggerError, match="unknown timezone"):
        parse_trigger({"kind": "run_event", "robot": "a", "on": "failed"}, "Europe/Nowhere")


def test_a_year_of_window_starts_lands_on_its_days_at_its_local_start() -> None:
    # A sanity check over a whole year: every window start lies on one of its days, at its local start or at a
    # gap's end, and never more than two weeks after the previous one.
    trigger = window(["mon", "wed", "sat"], "02:30", "03:30")
    berlin = ZoneInfo(BERLIN)
    previous = utc("2027-01-01 00:00")
    for fire in fires(trigger, previous, 160):
        start = fire.astimezone(berlin)
        assert start.strftime("%a") in ("Mon", "Wed", "Sat")
        assert (start.hour, start.minute) in ((2, 30), (3, 0))
        assert fire - previous <= timedelta(days=3)
        previous = fire
