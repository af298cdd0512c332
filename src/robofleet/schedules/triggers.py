"""When a schedule fires: small trigger classes behind one interface, parsed from their JSON shape.

Pure: a trigger keeps no state, reads no clock and does no I/O. `next_fire(after)` is a function of the trigger's
data and `after`, so the engine stores its answer (`next_fire_at`) and asks again after a restart with the same
result. Calendars (excluded days) are applied on top, in `calendars.next_allowed`.

Local times (cron fields, window bounds) are read in the schedule's IANA zone; every answer is an aware UTC
datetime. Daylight saving follows the rules in `robofleet.schedules.timing`: a local time in a gap fires at the
gap's end, a local time in a repeated hour fires once, at its first occurrence (cron fires and window starts and
ends alike); interval triggers step on an absolute grid and ignore daylight saving.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar, Final, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from robofleet.robots.states import ENDED
from robofleet.schedules.timing import as_utc, resolve, search_start

KINDS: Final = ("cron", "interval", "once", "window", "run_event", "queue")
DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
RUN_EVENTS: Final = ("succeeded", "failed", "ended")
MAX_INTERVAL: Final = timedelta(days=366)  # "at most a year", a leap year included
QUEUE_CHECK_SECONDS: Final = 10.0  # how often a queue trigger looks at its queue's backlog, unless it says
MAX_QUEUE_RUNS: Final = 100
_UNIX_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_WALL: Final = datetime(2000, 1, 1)
_FINAL_STATES: Final = frozenset(str(state) for state in ENDED)
# croniter's random (R) and hashed (H) fields pick their values when parsed: a schedule would fire at other times
# each time it is read, so they are refused.
_RANDOM_FIELD = re.compile(r"^[hr](\(|/|$)", re.IGNORECASE)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


class TriggerError(ValueError):
    """An invalid trigger or timezone. `field` names what is wrong ("trigger.expression", "timezone"), `message`
    says why, for people."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Trigger(Protocol):
    """When a schedule fires. Implementations are immutable and pure."""

    @property
    def kind(self) -> str:
        """One of KINDS."""
        ...

    def next_fire(self, after: datetime) -> datetime | None:
        """The first fire strictly after `after` (aware, any zone) as an aware UTC datetime, or None when it never
        fires again. Calendars are not applied here. A naive `after` raises ValueError."""
        ...

    def spec(self) -> dict[str, Any]:
        """The JSON shape it was parsed from, normalised: what the API returns and what parses back to it."""
        ...


@dataclass(frozen=True)
class CronTrigger:
    """Fires at the local times a cron expression matches: 5 fields (minute first) or 6 (seconds first),
    e.g. "0 30 7 * * mon-fri". Parsed and matched by croniter on the local wall clock, then placed in time."""

    expression: str  # normalised: fields separated by one space
    tz: ZoneInfo
    kind: ClassVar[str] = "cron"
    _matcher: Any = field(init=False, repr=False, compare=False)  # croniter's, shared: see _compile_cron

    def __post_init__(self) -> None:
        """Raises TriggerError for an invalid expression."""
        object.__setattr__(self, "_matcher", _compile_cron(self.expression))

    def next_fire(self, after: datetime) -> datetime | None:
        after = as_utc(after)
        # croniter walks naive wall-clock times (no daylight saving in sight); `resolve` places each one in time.
        matches = copy.copy(self._matcher)
        matches.set_current(search_start(after, self.tz), force=True)
        # A candidate resolves to `after` or earlier only when gap times collapse onto an earlier fire: a few steps.
        for _ in range(10_000):
            try:
                fire = resolve(matches.get_next(datetime), self.tz)
            except CroniterBadDateError:  # no match within croniter's horizon: it never fires again
                return None
            if fire > after:
                return fire
        return None

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "expression": self.expression}


@dataclass(frozen=True)
class IntervalTrigger:
    """Fires every `every` on an absolute grid anchored at `start` (start + k·every, k ≥ 0): a restart does not
    shift the grid, and daylight saving does not exist for it."""

    every: timedelta
    start: datetime | None = None  # aware; None: the grid of 1970-01-01T00:00:00Z
    kind: ClassVar[str] = "interval"

    def next_fire(self, after: datetime) -> datetime | None:
        after = as_utc(after)
        anchor = _UNIX_EPOCH if self.start is None else self.start
        if after < anchor:
            return anchor.astimezone(UTC)
        steps = (after - anchor) // self.every + 1  # whole steps, in exact microseconds: no drift
        return (anchor + steps * self.every).astimezone(UTC)

    def spec(self) -> dict[str, Any]:
        seconds = self.every.total_seconds()
        shape: dict[str, Any] = {"kind": self.kind, "seconds": int(seconds) if seconds.is_integer() else seconds}
        if self.start is not None:
            shape["start"] = self.start.isoformat()
        return shape


@dataclass(frozen=True)
class OnceTrigger:
    """Fires once, at `at` (aware)."""

    at: datetime
    kind: ClassVar[str] = "once"

    def next_fire(self, after: datetime) -> datetime | None:
        after = as_utc(after)
        return self.at.astimezone(UTC) if self.at > after else None

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at.isoformat()}


@dataclass(frozen=True)
class WindowTrigger:
    """A weekly window: on each of `days`, from local `start` to local `end` (end after start, within the day;
    end None means midnight at the day's end, "24:00"). Windows are half-open: the end instant is outside.
    A window whose both bounds fall in one daylight-saving gap is empty that day and skipped."""

    days: frozenset[int]  # date.weekday() numbers
    start: time
    end: time | None
    tz: ZoneInfo
    kind: ClassVar[str] = "window"

    def next_fire(self, after: datetime) -> datetime | None:
        """The start of the next window strictly after `after`."""
        after = as_utc(after)
        today = after.astimezone(self.tz).date()
        # A week ahead covers every weekday; one more week covers a window emptied by a gap.
        for offset in range(-1, 15):
            bounds = self.window_on(today + timedelta(days=offset))
            if bounds is not None and bounds[0] > after:
                return bounds[0]
        return None

    def window_at(self, moment: datetime) -> tuple[datetime, datetime] | None:
        """The window (start, end, aware UTC) that contains `moment`, or None."""
        moment = as_utc(moment, "moment")
        today = moment.astimezone(self.tz).date()
        # Yesterday's too: around a repeated midnight its end can come after today's local date began.
        for day in (today - timedelta(days=1), today):
            bounds = self.window_on(day)
            if bounds is not None and bounds[0] <= moment < bounds[1]:
                return bounds
        return None

    def window_on(self, day: date) -> tuple[datetime, datetime] | None:
        """The window (start, end, aware UTC) of local date `day`, or None when there is none that day."""
        if day.weekday() not in self.days:
            return None
        start = resolve(datetime.combine(day, self.start), self.tz)
        end_wall = (
            datetime.combine(day + timedelta(days=1), time.min) if self.end is None else datetime.combine(day, self.end)
        )
        end = resolve(end_wall, self.tz)
        return (start, end) if end > start else None

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "days": [DAYS[number] for number in sorted(self.days)],
            "start": _clock_text(self.start),
            "end": "24:00" if self.end is None else _clock_text(self.end),
        }


@dataclass(frozen=True)
class RunEventTrigger:
    """Fires when a run of `robot` ends as `on` says; driven by run events, never by the clock."""

    robot: str
    on: str  # one of RUN_EVENTS
    kind: ClassVar[str] = "run_event"

    def next_fire(self, after: datetime) -> datetime | None:
        as_utc(after)  # refuses a naive time, as every trigger does
        return None

    def matches(self, robot: str, state: str) -> bool:
        """Whether a run of `robot` reaching `state` fires this trigger; "ended" is any final state."""
        if robot != self.robot:
            return False
        return state in _FINAL_STATES if self.on == "ended" else state == self.on

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "robot": self.robot, "on": self.on}


@dataclass(frozen=True)
class QueueTrigger:
    """Keeps a queue worked: every `every`, when `queue` has at least `min_items` ready items, starts the target
    robot until it has `max_runs` active runs. Its clock is an interval grid: the checks, not the fires."""

    queue: str
    min_items: int
    max_runs: int
    every: timedelta
    kind: ClassVar[str] = "queue"

    def next_fire(self, after: datetime) -> datetime | None:
        return IntervalTrigger(self.every).next_fire(after)

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "queue": self.queue,
            "min_items": self.min_items,
            "max_runs": self.max_runs,
            "check_seconds": self.every.total_seconds(),
        }


def parse_timezone(name: object) -> ZoneInfo:
    """The IANA zone `name`; TriggerError (field "timezone") for anything else."""
    if not isinstance(name, str) or not name:
        raise TriggerError("timezone", "timezone must be an IANA zone name such as 'Europe/Berlin'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        message = f"unknown timezone {name!r}: use an IANA zone name such as 'Europe/Berlin'"
        raise TriggerError("timezone", message) from None


def parse_trigger(spec: Mapping[str, Any], timezone: str) -> Trigger:
    """The trigger `spec` describes, computing in `timezone`. Raises TriggerError (with `.field`, e.g.
    "trigger.expression", and a message) for an unknown kind or field, a bad cron expression, an interval <= 0 or
    longer than a year, a `once.at` without a UTC offset, a window that does not end after it starts, an unknown
    day name or run event, or an unknown timezone (field "timezone")."""
    tz = parse_timezone(timezone)
    if not isinstance(spec, Mapping):
        raise TriggerError("trigger", "trigger must be an object with a 'kind'")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise TriggerError("trigger.kind", f"unknown trigger kind {kind!r}: expected one of {', '.join(KINDS)}")
    parser = _PARSERS[kind]
    _refuse_unknown_fields(spec, parser.fields)
    return parser.parse(spec, tz)


def _parse_cron(spec: Mapping[str, Any], tz: ZoneInfo) -> CronTrigger:
    return CronTrigger(" ".join(_required(spec, "expression").split()), tz)


# croniter expands an expression when built, most of the cost of a question (0.35 ms of 0.45), and the engine
# parses a schedule's trigger at each fire: build each expression's matcher once (about 1.5 kB; 16,384 of them
# are 25 MB at most) and ask a shallow copy each time. A copy shares only the expanded fields, which croniter
# copies before it changes them; where it stands (`cur`) is the copy's own.
@functools.lru_cache(maxsize=16_384)
def _compile_cron(expression: str) -> Any:
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise TriggerError(
            "trigger.expression",
            f"a cron expression has 5 fields (minute hour day month weekday) or 6 (second first), "
            f"got {len(fields)} in {expression!r}",
        )
    if any(_RANDOM_FIELD.match(item) for field in fields for item in field.split(",")):
        raise TriggerError("trigger.expression", "random (R) and hashed (H) cron fields are not supported")
    try:
        # A fixed start: croniter would otherwise read the clock; every question sets its own.
        matcher = croniter(expression, _EPOCH_WALL, second_at_beginning=True)
    except (CroniterError, ValueError, KeyError, IndexError) as error:
        raise TriggerError("trigger.expression", f"invalid cron expression {expression!r}: {error}") from None
    try:
        # Syntax alone lets through expressions that match no date at all (31 February).
        copy.copy(matcher).get_next(datetime)
    except CroniterBadDateError:
        raise TriggerError("trigger.expression", f"cron expression {expression!r} never matches a date") from None
    return matcher


def _parse_interval(spec: Mapping[str, Any], tz: ZoneInfo) -> IntervalTrigger:
    seconds = spec.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        raise TriggerError("trigger.seconds", "seconds must be a number")
    # Compared as a number first: timedelta overflows on huge ones.
    if seconds > MAX_INTERVAL.total_seconds():
        raise TriggerError("trigger.seconds", f"seconds must be at most {int(MAX_INTERVAL.total_seconds())} (a year)")
    every = timedelta(seconds=seconds)
    if every <= timedelta(0):  # also what rounds to 0 microseconds
        raise TriggerError("trigger.seconds", "seconds must be more than 0")
    return IntervalTrigger(every, None if spec.get("start") is None else _aware_time(spec, "start"))


def _parse_once(spec: Mapping[str, Any], tz: ZoneInfo) -> OnceTrigger:
    return OnceTrigger(_aware_time(spec, "at"))


def _parse_window(spec: Mapping[str, Any], tz: ZoneInfo) -> WindowTrigger:
    names = spec.get("days")
    if not isinstance(names, list | tuple) or not names:
        raise TriggerError("trigger.days", f"days must be a non-empty list of {', '.join(DAYS)}")
    days: set[int] = set()
    for name in names:
        if not isinstance(name, str) or name.strip().lower() not in DAYS:
            raise TriggerError("trigger.days", f"unknown day {name!r}: expected one of {', '.join(DAYS)}")
        days.add(DAYS.index(name.strip().lower()))
    start = _clock(spec, "start")
    end = None if _required(spec, "end").strip() in ("24:00", "24:00:00") else _clock(spec, "end")
    if end is not None and end <= start:
        raise TriggerError(
            "trigger.end",
            f"the window must end after it starts ({_clock_text(start)}); it lies within one day, "
            "use 24:00 for midnight",
        )
    return WindowTrigger(frozenset(days), start, end, tz)


def _parse_run_event(spec: Mapping[str, Any], tz: ZoneInfo) -> RunEventTrigger:
    robot = _required(spec, "robot")
    on = spec.get("on")
    if on not in RUN_EVENTS:
        raise TriggerError("trigger.on", f"on must be one of {', '.join(RUN_EVENTS)}, got {on!r}")
    return RunEventTrigger(robot, on)


def _parse_queue(spec: Mapping[str, Any], tz: ZoneInfo) -> QueueTrigger:
    queue = _required(spec, "queue").strip()
    min_items = _whole(spec, "min_items", 1, 1, 1_000_000)
    max_runs = _whole(spec, "max_runs", 1, 1, MAX_QUEUE_RUNS)
    seconds = spec.get("check_seconds", QUEUE_CHECK_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= 3600:
        raise TriggerError("trigger.check_seconds", "check_seconds must be a number from 1 to 3600")
    return QueueTrigger(queue, min_items, max_runs, timedelta(seconds=seconds))


def _whole(spec: Mapping[str, Any], name: str, default: int, least: int, most: int) -> int:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise TriggerError(f"trigger.{name}", f"{name} must be a whole number from {least} to {most}")
    return value


@dataclass(frozen=True)
class _Parser:
    fields: frozenset[str]
    parse: Callable[[Mapping[str, Any], ZoneInfo], Trigger]


_PARSERS: Final[dict[str, _Parser]] = {
    "cron": _Parser(frozenset({"expression"}), _parse_cron),
    "interval": _Parser(frozenset({"seconds", "start"}), _parse_interval),
    "once": _Parser(frozenset({"at"}), _parse_once),
    "window": _Parser(frozenset({"days", "start", "end"}), _parse_window),
    "run_event": _Parser(frozenset({"robot", "on"}), _parse_run_event),
    "queue": _Parser(frozenset({"queue", "min_items", "max_runs", "check_seconds"}), _parse_queue),
}


def _refuse_unknown_fields(spec: Mapping[str, Any], known: frozenset[str]) -> None:
    # A misspelt field ("expresion", "second") would otherwise be dropped silently, and the schedule fire at other
    # times than meant.
    for name in spec:
        if name != "kind" and name not in known:
            raise TriggerError(f"trigger.{name}", f"unknown field {name!r} for a {spec['kind']} trigger")


def _required(spec: Mapping[str, Any], name: str) -> str:
    value = spec.get(name)
    if not isinstance(value, str) or not value.strip():
        raise TriggerError(f"trigger.{name}", f"{name} is required (a string)")
    return value


def _aware_time(spec: Mapping[str, Any], name: str) -> datetime:
    text = _required(spec, name)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        message = f"{name} must be an ISO 8601 time such as 2027-01-01T09:00:00+01:00, got {text!r}"
        raise TriggerError(f"trigger.{name}", message) from None
    if moment.tzinfo is None:
        # The schedule's zone could be assumed, but a one-off time is usually pasted from elsewhere: ask for the offset.
        raise TriggerError(f"trigger.{name}", f"{name} needs a UTC offset (e.g. +01:00 or Z): {text!r}")
    return moment


def _clock(spec: Mapping[str, Any], name: str) -> time:
    """A local "HH:MM" or "HH:MM:SS"."""
    text = _required(spec, name).strip()
    found = _CLOCK.match(text)
    try:
        if found is None:
            raise ValueError(text)
        return time(int(found[1]), int(found[2]), int(found[3] or 0))
    except ValueError:  # no match, or out of range (25:00, 09:60)
        message = f"{name} must be a local time HH:MM (00:00 to 23:59), got {text!r}"
        raise TriggerError(f"trigger.{name}", message) from None


def _clock_text(moment: time) -> str:
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")
