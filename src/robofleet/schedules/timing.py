"""Local wall-clock times and the instants they mean, across daylight-saving changes.

Schedules are written in local time ("07:30 Berlin time") but fire at instants (UTC). Most local times name exactly
one instant; around a daylight-saving change some name none and some name two. The rules every trigger follows:

- **Gap** (spring forward, e.g. Europe/Berlin 2027-03-28 02:00 → 03:00, America/New_York 2027-03-14 02:00 → 03:00):
  a local time inside the gap means the gap's end. A fire planned at 02:30 happens at 03:00; several planned
  inside one gap (a cron every 15 minutes) collapse into that one fire at 03:00, together with 03:00's own.
- **Repeat** (fall back, e.g. Europe/Berlin 2027-10-31 03:00 → 02:00, America/New_York 2027-11-07 02:00 → 01:00):
  a local time inside the repeated hour means its first occurrence. It fires once; nothing fires during the
  second pass of the hour.
- Windows follow the same two rules for both bounds: a window 02:30-05:00 opens at 03:00 on the spring day, one
  lying wholly inside the gap is empty that day (skipped), and a bound in a repeated hour is its first pass. So a
  window's real length is its local length, less a gap inside it or plus a repeat inside it.
- Calendars judge a fire by its local date (after the rules above).
- Interval triggers are not local: they step on an absolute grid and ignore daylight saving entirely; so do
  one-off triggers, which name an instant with its offset.

Pure functions of their arguments; the zone rules come from the IANA database through `zoneinfo`.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_ONE_MICROSECOND = timedelta(microseconds=1)


def as_utc(moment: datetime, name: str = "after") -> datetime:
    """`moment` in UTC; ValueError for a naive datetime, an instant without a zone means nothing to a schedule.
    Triggers compare in UTC: Python compares two aware times of other zones as unequal when one lies in a repeated
    hour (PEP 495), even when they are the same instant."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


def wall_clock(moment: datetime, tz: ZoneInfo) -> datetime:
    """What a clock on the wall in `tz` shows at `moment` (aware): a naive datetime."""
    return moment.astimezone(tz).replace(tzinfo=None, fold=0)


def resolve(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant (aware UTC) a naive local time in `tz` stands for: a time in a gap means the gap's end, a time
    in a repeated hour its first occurrence."""
    earlier = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    later = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if earlier == later:
        return earlier
    earlier, later = min(earlier, later), max(earlier, later)
    if wall_clock(earlier, tz) == wall.replace(fold=0):
        return earlier  # a repeated time: both readings exist, the first one fires
    # In a gap neither reading exists; the two offsets bracket the change, which is where the gap ends.
    return _transition(tz, earlier, later)


def repeat_end(moment: datetime, tz: ZoneInfo) -> datetime | None:
    """When `moment` lies in the second pass of a repeated hour, the naive local time at which the repetition ends
    (03:00 for Berlin's 02:00-03:00); otherwise None. Local times before that end already had their first
    occurrence, so a trigger looking for the next fire after `moment` starts its search there."""
    local = moment.astimezone(tz)
    if not local.fold:
        return None
    first_pass = local.replace(fold=0).astimezone(UTC)
    change = _transition(tz, first_pass, moment.astimezone(UTC))
    old_offset = first_pass.astimezone(tz).utcoffset()
    assert old_offset is not None  # a ZoneInfo always has an offset
    return (change + old_offset).replace(tzinfo=None)


def search_start(after: datetime, tz: ZoneInfo) -> datetime:
    """The naive local time from which to look for the next local fire strictly after `after`: its wall clock,
    or, in the second pass of a repeated hour, just before the repetition ends (its times have fired already)."""
    end = repeat_end(after, tz)
    return wall_clock(after, tz) if end is None else end - _ONE_MICROSECOND


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """The instant (aware UTC) local `day` begins in `tz` (its midnight, or the end of a gap at midnight)."""
    return resolve(datetime.combine(day, time.min), tz)


def _transition(tz: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The first instant (aware UTC, whole second) in (before, after] at which `tz` has `after`'s offset, for two
    instants on either side of one offset change. zoneinfo does not expose its transitions, so bisect: about a
    dozen steps for an hour, and only around a change."""
    target = after.astimezone(tz).utcoffset()
    low, high = math.floor(before.timestamp()), math.ceil(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
