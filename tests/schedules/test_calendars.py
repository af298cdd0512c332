"""Calendars keep a schedule from firing on excluded days (explicit dates, public holidays by country and region),
judged by the fire's local date; previews list the fires that are left. Pure: a fixed `after`, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from robofleet.schedules.calendars import Calendar, CalendarError, check_holidays, next_allowed, preview
from robofleet.schedules.triggers import Trigger, parse_trigger

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
GERMANY = Calendar("de", holidays=(("DE", None),))
BAVARIA = Calendar("de-by", holidays=(("DE", "BY"),))
NEW_YORK_STATE = Calendar("us-ny", holidays=(("US", "NY"),))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def cron(expression: str, tz: ZoneInfo = BERLIN) -> Trigger:
    return parse_trigger({"kind": "cron", "expression": expression}, tz.key)


def test_a_calendar_excludes_its_dates_and_its_countries_public_holidays() -> None:
    assert GERMANY.excludes(date(2027, 12, 25))
    assert GERMANY.excludes(date(2027, 12, 26))
    assert not GERMANY.excludes(date(2027, 12, 24))  # Christmas Eve is a working day in Germany
    assert not GERMANY.excludes(date(2027, 1, 6))  # Epiphany: only in some states
    assert BAVARIA.excludes(date(2027, 1, 6))
    assert NEW_YORK_STATE.excludes(date(2027, 2, 12))  # Lincoln's Birthday, a New York holiday
    assert not Calendar("us", holidays=(("US", None),)).excludes(date(2027, 2, 12))
    closing = Calendar("closing", dates=frozenset({date(2027, 8, 13)}))
    assert closing.excludes(date(2027, 8, 13))
    assert not closing.excludes(date(2027, 8, 14))
    assert not Calendar("empty").excludes(date(2027, 12, 25))


def test_known_countries_and_subdivisions_pass_the_check() -> None:
    check_holidays("DE", None)
    check_holidays("DE", "BY")
    check_holidays("US", "NY")


@pytest.mark.parametrize(
    ("country", "subdiv", "field"),
    [
        ("XX", None, "holidays.country"),
        ("de", None, "holidays.country"),
        ("", None, "holidays.country"),
        ("DE", "ZZ", "holidays.subdiv"),
        ("DE", "NY", "holidays.subdiv"),
        ("XX", "BY", "holidays.country"),
    ],
)
def test_an_unknown_country_or_subdivision_is_refused_with_the_field(
    country: str, subdiv: str | None, field: str
) -> None:
    with pytest.raises(CalendarError) as refused:
        check_holidays(country, subdiv)
    assert refused.value.field == field
    assert isinstance(refused.value, ValueError)
    with pytest.raises(CalendarError) as refused:
        Calendar("bad", holidays=((country, subdiv),)).excludes(date(2027, 1, 1))
    assert refused.value.field == field


def test_the_next_allowed_fire_skips_holidays() -> None:
    daily = cron("0 30 7 * * *")
    # From Christmas Eve midday, the 25th and 26th are skipped: Monday 27 December, 07:30 CET.
    assert next_allowed(daily, utc("2027-12-24 12:00"), BERLIN, [GERMANY]) == utc("2027-12-27 06:30")
    assert next_allowed(daily, utc("2027-12-24 12:00"), BERLIN, []) == utc("2027-12-25 06:30")
    assert next_allowed(daily, utc("2027-12-23 12:00"), BERLIN, [GERMANY]) == utc("2027-12-24 06:30")


def test_several_calendars_all_apply() -> None:
    daily = cron("0 0 9 * * *")
    company = Calendar("company", dates=frozenset({date(2027, 12, 27), date(2027, 12, 28)}))
    assert next_allowed(daily, utc("2027-12-24 12:00"), BERLIN, [GERMANY, company]) == utc("2027-12-29 08:00")
    assert next_allowed(daily, utc("2027-12-24 12:00"), BERLIN, [company, GERMANY]) == utc("2027-12-29 08:00")


def test_a_fire_is_excluded_by_its_local_date_in_the_schedules_zone() -> None:
    # 20:00 in New York on 24 December is 01:00 UTC on the 25th: it is a 24 December fire there.
    evening = cron("0 0 20 * * *", NEW_YORK)
    christmas = Calendar("christmas", dates=frozenset({date(2027, 12, 25)}))
    assert next_allowed(evening, utc("2027-12-24 12:00"), NEW_YORK, [christmas]) == utc("2027-12-25 01:00")
    assert next_allowed(evening, utc("2027-12-25 02:00"), NEW_YORK, [christmas]) == utc("2027-12-27 01:00")
    # 23:30 UTC on 24 December is already the 25th in Berlin: excluded there.
    late = cron("0 30 23 * * *", ZoneInfo("UTC"))
    assert next_allowed(late, utc("2027-12-24 12:00"), BERLIN, [christmas]) == utc("2027-12-25 23:30")


def test_a_new_york_state_calendar_skips_lincolns_birthday() -> None:
    weekdays = cron("0 0 9 * * mon-fri", NEW_YORK)
    # Thursday 11 February 2027, after 09:00: Friday the 12th is Lincoln's Birthday, Monday the 15th Washington's.
    after = datetime(2027, 2, 11, 10, tzinfo=NEW_YORK)
    assert next_allowed(weekdays, after, NEW_YORK, [NEW_YORK_STATE]) == utc("2027-02-16 14:00")


def test_an_excluded_day_is_skipped_whole_even_for_a_cron_every_second() -> None:
    every_second = cron("* * * * * *")
    just_before = datetime(2027, 12, 24, 23, 59, 59, 500_000, tzinfo=BERLIN)
    assert next_allowed(every_second, just_before, BERLIN, [GERMANY]) == datetime(2027, 12, 27, tzinfo=BERLIN)


def test_an_excluded_day_around_a_daylight_saving_change() -> None:
    # Sunday 28 March 2027 in Berlin has 23 hours; excluding it skips to Monday's midnight, CEST.
    hourly = cron("0 0 * * * *")
    sunday = Calendar("sunday", dates=frozenset({date(2027, 3, 28)}))
    assert next_allowed(hourly, utc("2027-03-27 22:30"), BERLIN, [sunday]) == utc("2027-03-28 22:00")
    # Sunday 31 October 2027 has 25 hours; excluding it skips to Monday's midnight, CET.
    autumn = Calendar("sunday", dates=frozenset({date(2027, 10, 31)}))
    assert next_allowed(hourly, utc("2027-10-30 21:30"), BERLIN, [autumn]) == utc("2027-10-31 23:00")


def test_the_search_gives_up_when_every_fire_is_excluded() -> None:
    yearly_on_christmas = cron("0 0 9 25 12 *")
    assert next_allowed(yearly_on_christmas, utc("2027-01-01 00:00"), BERLIN, [GERMANY]) is None
    everything = Calendar("everything", dates=frozenset(date(2027, 1, 1) + timedelta(days=n) for n in range(1100)))
    assert next_allowed(cron("0 0 9 * * *"), utc("2026-12-31 12:00"), BERLIN, [everything]) is None


def test_a_trigger_that_ends_has_no_allowed_fire() -> None:
    once = parse_trigger({"kind": "once", "at": "2027-12-25T09:00:00+01:00"}, "Europe/Berlin")
    assert next_allowed(once, utc("2027-01-01 00:00"), BERLIN, [GERMANY]) is None
    assert next_allowed(once, utc("2027-01-01 00:00"), BERLIN, []) == utc("2027-12-25 08:00")
    chain = parse_trigger({"kind": "run_event", "robot": "a", "on": "ended"}, "Europe/Berlin")
    assert next_allowed(chain, utc("2027-01-01 00:00"), BERLIN, [GERMANY]) is None
    assert preview(chain, utc("2027-01-01 00:00"), BERLIN, [GERMANY], 5) == []


def test_a_preview_lists_the_next_fires_the_calendars_allow() -> None:
    weekdays = cron("0 30 7 * * mon-fri")
    # Easter 2027 in Bavaria: Good Friday 26 March and Easter Monday 29 March; summer time from the 28th.
    assert preview(weekdays, utc("2027-03-24 00:00"), BERLIN, [BAVARIA], 5) == [
        utc("2027-03-24 06:30"),
        utc("2027-03-25 06:30"),
        utc("2027-03-30 05:30"),
        utc("2027-03-31 05:30"),
        utc("2027-04-01 05:30"),
    ]
    assert preview(weekdays, utc("2027-03-24 00:00"), BERLIN, [BAVARIA], 0) == []


def test_a_preview_of_a_window_lists_window_starts() -> None:
    office = parse_trigger(
        {"kind": "window", "days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"},
        "Europe/Berlin",
    )
    assert preview(office, utc("2027-12-22 12:00"), BERLIN, [GERMANY], 3) == [
        utc("2027-12-23 08:00"),
        utc("2027-12-24 08:00"),
        utc("2027-12-27 08:00"),
    ]


def test_a_preview_stops_when_the_trigger_ends() -> None:
    once = parse_trigger({"kind": "once", "at": "2027-12-24T09:00:00+01:00"}, "Europe/Berlin")
    assert preview(once, utc("2027-01-01 00:00"), BERLIN, [GERMANY], 20) == [utc("2027-12-24 08:00")]
