"""Calendars: named sets of days on which a schedule does not fire, and the fires that are left.

A calendar excludes explicit dates and the public holidays of countries (and their subdivisions), which the
`holidays` package computes. A fire is excluded when its local date, in the schedule's zone, is excluded by any
of the schedule's calendars: a schedule in Europe/Berlin skips German Christmas from midnight to midnight Berlin
time. Pure, except that `holidays` computes the holiday dates (cached per country, subdivision and year).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays as pyholidays

from robofleet.schedules.timing import as_utc, start_of_day
from robofleet.schedules.triggers import Trigger

# How far next_allowed looks past excluded days before it concludes the schedule never fires again.
MAX_SKIPPED_DAYS = 1000
MAX_SEARCH = timedelta(days=3653)  # ten years
_ONE_MICROSECOND = timedelta(microseconds=1)


class CalendarError(ValueError):
    """An invalid calendar. `field` names what is wrong ("holidays.country", "holidays.subdiv"), `message`
    says why, for people."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Calendar:
    """Days a schedule does not fire: explicit `dates` and the public holidays of each (country, subdivision or
    None) in `holidays`, e.g. ("DE", "BY") for Bavaria, as the `holidays` package names them."""

    name: str
    dates: frozenset[date] = frozenset()
    holidays: tuple[tuple[str, str | None], ...] = ()

    def excludes(self, day: date) -> bool:
        """Whether `day` is excluded. CalendarError for a country or subdivision `holidays` does not know."""
        if day in self.dates:
            return True
        return any(day in _holiday_dates(country, subdiv, day.year) for country, subdiv in self.holidays)


def check_holidays(country: str, subdiv: str | None) -> None:
    """Return when `holidays` knows `country` (ISO 3166 code, e.g. "DE") and `subdiv` (e.g. "BY", or None);
    raise CalendarError naming the field and the known values otherwise."""
    supported = pyholidays.list_supported_countries()
    if not isinstance(country, str) or country not in supported:
        raise CalendarError("holidays.country", f"unknown country {country!r}: use an ISO 3166 code such as 'DE'")
    if subdiv is not None and (not isinstance(subdiv, str) or subdiv not in supported[country]):
        known = ", ".join(supported[country]) or "none"
        raise CalendarError("holidays.subdiv", f"{country} has no subdivision {subdiv!r} (known: {known})")


def next_allowed(trigger: Trigger, after: datetime, tz: ZoneInfo, calendars: Sequence[Calendar]) -> datetime | None:
    """The trigger's first fire strictly after `after` (aware UTC) whose local date in `tz` no calendar excludes,
    or None when there is none: the trigger ends, or every fire for MAX_SKIPPED_DAYS excluded days or MAX_SEARCH
    (ten years) is excluded."""
    after = as_utc(after)
    fire = trigger.next_fire(after)
    skipped = 0
    while fire is not None and fire - after <= MAX_SEARCH:
        day = fire.astimezone(tz).date()
        if not any(calendar.excludes(day) for calendar in calendars):
            return fire
        skipped += 1
        if skipped > MAX_SKIPPED_DAYS:
            return None
        # Skip the whole excluded day at once: a cron every second would otherwise ask 86,400 times.
        fire = trigger.next_fire(start_of_day(day + timedelta(days=1), tz) - _ONE_MICROSECOND)
    return None


def preview(
    trigger: Trigger, after: datetime, tz: ZoneInfo, calendars: Sequence[Calendar], count: int
) -> list[datetime]:
    """Up to `count` next fires strictly after `after` that the calendars allow (aware UTC, ascending); fewer when
    the trigger ends."""
    fires: list[datetime] = []
    cursor = after
    while len(fires) < count:
        fire = next_allowed(trigger, cursor, tz, calendars)
        if fire is None:
            break
        fires.append(fire)
        cursor = fire
    return fires


@functools.lru_cache(maxsize=1024)
def _holiday_dates(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    # Building a country's holidays for a year costs a few milliseconds; a preview asks for the same year often.
    try:
        return frozenset(pyholidays.country_holidays(country, subdiv=subdiv, years=year))
    except NotImplementedError as error:  # how `holidays` says it does not know a country or subdivision
        check_holidays(country, subdiv)  # names the field and the known values
        raise CalendarError("holidays.country", str(error)) from None
