"""The schedule form of the panel: a trigger built from plain fields (a cron builder, interval seconds, a local
date-time, window days and hours, a run event) and back into a ScheduleCreate, with every mistake named by the
form field it belongs to. Pure: no store, no clock but the one passed in."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from starlette.datastructures import FormData

from robofleet.schedules.calendars import Calendar as DayCalendar
from robofleet.schedules.schemas import CalendarOut, ScheduleCreate, ScheduleOut
from robofleet.schedules.triggers import DAYS, KINDS
from robofleet.web import form_state
from robofleet.web.form_state import EnteredForm, number_text, text_of, texts_of

# The cron builder's shapes; "custom" is an expression typed by hand.
CRON_MODES: Final = {
    "seconds": "every N seconds",
    "minutes": "every N minutes",
    "hourly": "every hour at minute M",
    "daily": "every day at HH:MM",
    "weekdays": "Monday to Friday at HH:MM",
    "weekly": "on chosen days at HH:MM",
    "monthly": "on day D of each month at HH:MM",
    "custom": "a cron expression (expert)",
}
KIND_TITLES: Final = {
    "cron": "Cron (calendar times)",
    "interval": "Interval",
    "once": "Once",
    "window": "Weekly window",
    "run_event": "After another robot's run",
    "queue": "A queue's backlog",
}
DAY_TITLES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ROBOT_TARGET_PREFIX = "robots."

# Form keys in the order of the form.
LABELS: Final[dict[str, str]] = {
    "name": "Name",
    "kind": "Trigger",
    "cron_mode": "Repeat",
    "cron_every": "Every N",
    "cron_minute": "Minute",
    "cron_time": "Time",
    "cron_days": "Days",
    "cron_dom": "Day of month",
    "cron_expression": "Cron expression",
    "interval_seconds": "Interval (s)",
    "once_at": "At",
    "window_days": "Window days",
    "window_start": "Window start",
    "window_end": "Window end",
    "event_robot": "After robot",
    "event_on": "When its run",
    "queue_name": "Queue",
    "queue_min_items": "Ready items at least",
    "queue_max_runs": "Runs at most",
    "timezone": "Timezone",
    "calendars": "Calendars",
    "action": "Action",
    "robot": "Robot",
    "args": "Arguments",
    "misfire_policy": "Misfire",
    "misfire_grace": "Grace (s)",
    "overlap": "Overlap",
    "jitter_seconds": "Jitter (s)",
    "enabled": "Enabled",
    "description": "Description",
    "tags": "Tags",
}
LISTS: Final = ("cron_days", "window_days", "calendars")
# Fields of one trigger kind or cron shape: shown, enabled and sent only when it is the chosen one.
SECTION_PREFIXES: Final = (
    "cron_",
    "interval_",
    "once_",
    "window_",
    "event_",
    "queue_",
)  # fields sent once per checked box or selected option

# Where the service's and the schemas' field names ("trigger.end", "target.args.name") show in the form.
SERVICE_FIELDS: Final[dict[str, str]] = {
    "trigger": "kind",
    "trigger.kind": "kind",
    "trigger.expression": "cron_expression",
    "trigger.seconds": "interval_seconds",
    "trigger.start": "window_start",
    "trigger.at": "once_at",
    "trigger.days": "window_days",
    "trigger.end": "window_end",
    "trigger.robot": "event_robot",
    "trigger.on": "event_on",
    "trigger.queue": "queue_name",
    "trigger.min_items": "queue_min_items",
    "trigger.max_runs": "queue_max_runs",
    "timezone": "timezone",
    "calendars": "calendars",
    "target": "action",
    "target.action": "action",
    "target.args.name": "robot",
    "target.args": "args",
    "misfire": "misfire_policy",
    "misfire.policy": "misfire_policy",
    "misfire.grace_seconds": "misfire_grace",
    "overlap": "overlap",
    "jitter_seconds": "jitter_seconds",
    "description": "description",
    "tags": "tags",
    "name": "name",
}


def form_key(service_field: str) -> str | None:
    """The form field a service or schema error names; "target.args.x" falls back to the arguments box."""
    if service_field in SERVICE_FIELDS:
        return SERVICE_FIELDS[service_field]
    if service_field.startswith("target.args"):
        return "args"
    if service_field.startswith("trigger."):
        return "kind"
    return None


class ScheduleForm(EnteredForm[Any]):
    """What the form shows: the text of each field (a list for checkboxes and multi-selects) and its mistakes."""

    labels = LABELS

    def shown_at(self, service_field: object, message: str) -> None:
        """A refusal next to the field it names, else above the form."""
        key = form_key(service_field) if isinstance(service_field, str) else None
        if key is None:
            self.message = message
        else:
            self.errors.setdefault(key, message)


class FormInvalid(form_state.FormInvalid):
    labels = LABELS


def submitted(form: FormData) -> dict[str, Any]:
    """Every schedule field of a posted form: text, or a list of texts for the multi-valued ones. The fields of
    the trigger kinds and cron shapes not chosen are disabled in the page (so the browser neither checks nor sends
    them): those left out keep the blank form's values, for when the kind is switched back after an error."""
    defaults = blank_form().values
    values: dict[str, Any] = {}
    for key in LABELS:
        if key in LISTS:
            values[key] = texts_of(form, key)
        elif key not in form and key.startswith(SECTION_PREFIXES):
            values[key] = defaults[key]
        else:
            values[key] = text_of(form, key)
    if "window_days" not in form and values["kind"] != "window":
        values["window_days"] = defaults["window_days"]
    return values


def blank_form() -> ScheduleForm:
    return ScheduleForm(
        {
            **{key: "" for key in LABELS},
            **{key: [] for key in LISTS},
            "kind": "cron",
            "cron_mode": "weekdays",
            "cron_every": "5",
            "cron_minute": "0",
            "cron_time": "07:30",
            "cron_dom": "1",
            "interval_seconds": "60",
            "window_days": ["mon", "tue", "wed", "thu", "fri"],
            "window_start": "09:00",
            "window_end": "18:00",
            "event_on": "succeeded",
            "queue_min_items": "1",
            "queue_max_runs": "1",
            "timezone": "UTC",
            "action": "robots.start",
            "args": "{}",
            "misfire_policy": "skip",
            "misfire_grace": "60",
            "overlap": "skip",
            "jitter_seconds": "0",
            "enabled": "on",
        }
    )


def form_of(schedule: ScheduleOut) -> ScheduleForm:
    """The edit form of a stored schedule: its trigger in the builder's fields (a cron as typed, "custom")."""
    form = blank_form()
    values = form.values
    trigger = schedule.trigger
    kind = str(trigger.get("kind", "cron"))
    values["kind"] = kind
    if kind == "cron":
        values["cron_expression"] = str(trigger.get("expression", ""))
        values.update(builder_of(values["cron_expression"]))
    elif kind == "interval":
        values["interval_seconds"] = str(trigger.get("seconds", ""))
    elif kind == "once":
        at = datetime.fromisoformat(str(trigger["at"])).astimezone(_zone(schedule.timezone) or ZoneInfo("UTC"))
        values["once_at"] = at.strftime("%Y-%m-%dT%H:%M")
    elif kind == "window":
        values.update(window_days=list(trigger.get("days", [])), window_start=trigger.get("start", ""))
        values["window_end"] = trigger.get("end", "")
    elif kind == "run_event":
        values.update(event_robot=str(trigger.get("robot", "")), event_on=str(trigger.get("on", "")))
    elif kind == "queue":
        values.update(queue_name=str(trigger.get("queue", "")), queue_min_items=str(trigger.get("min_items", 1)))
        values["queue_max_runs"] = str(trigger.get("max_runs", 1))
    args = dict(schedule.target.args)
    robot = args.pop("name", None) if schedule.target.action.startswith(ROBOT_TARGET_PREFIX) else None
    values.update(
        name=schedule.name,
        timezone=schedule.timezone,
        calendars=list(schedule.calendars),
        action=schedule.target.action,
        robot=robot or "",
        args=json.dumps(args) if args else "{}",
        misfire_policy=schedule.misfire.policy,
        misfire_grace=number_text(schedule.misfire.grace_seconds),
        overlap=schedule.overlap,
        jitter_seconds=number_text(schedule.jitter_seconds),
        enabled="on" if schedule.enabled else "",
        description=schedule.description,
        tags=", ".join(schedule.tags),
    )
    return form


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _clock(text: str, key: str, errors: dict[str, str]) -> tuple[int, int]:
    """(hour, minute) of a "HH:MM"; the mistake goes to `errors[key]`."""
    hour, colon, minute = text.strip().partition(":")
    if colon and hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60:
        return int(hour), int(minute)
    errors.setdefault(key, f"give a local time HH:MM (00:00 to 23:59), got {text.strip()!r}")
    return 0, 0


def _whole(text: str, key: str, low: int, high: int, errors: dict[str, str]) -> int:
    value = text.strip()
    if value.isdigit() and low <= int(value) <= high:
        return int(value)
    errors.setdefault(key, f"give a whole number from {low} to {high}, got {value!r}")
    return low


def build_cron(values: Mapping[str, Any], errors: dict[str, str]) -> str:
    """The cron expression the builder's fields describe (5 fields, or 6 with seconds first when it repeats by
    seconds); the typed expression in "custom" mode. Mistakes go to `errors` by form field."""
    mode = values.get("cron_mode") or "custom"
    if mode == "seconds":
        every = _whole(values.get("cron_every", ""), "cron_every", 1, 59, errors)
        return f"*/{every} * * * * *"
    if mode == "minutes":
        every = _whole(values.get("cron_every", ""), "cron_every", 1, 59, errors)
        return f"*/{every} * * * *"
    if mode == "hourly":
        return f"{_whole(values.get('cron_minute', ''), 'cron_minute', 0, 59, errors)} * * * *"
    if mode in ("daily", "weekdays", "weekly", "monthly"):
        hour, minute = _clock(values.get("cron_time", ""), "cron_time", errors)
        if mode == "daily":
            return f"{minute} {hour} * * *"
        if mode == "weekdays":
            return f"{minute} {hour} * * mon-fri"
        if mode == "weekly":
            days = [day for day in DAYS if day in values.get("cron_days", [])]
            if not days:
                errors.setdefault("cron_days", "tick at least one day")
            return f"{minute} {hour} * * {','.join(days) or 'mon'}"
        return f"{minute} {hour} {_whole(values.get('cron_dom', ''), 'cron_dom', 1, 31, errors)} * *"
    if mode != "custom":
        errors.setdefault("cron_mode", f"unknown choice {mode!r}")
    expression = " ".join(str(values.get("cron_expression", "")).split())
    if not expression:
        errors.setdefault("cron_expression", "type a cron expression, e.g. 30 7 * * mon-fri")
    return expression


def trigger_of(values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The trigger's JSON shape from the form; what the form cannot even express goes to `errors` (the trigger's
    own rules, such as a window ending before it starts, are the service's to check)."""
    kind = values.get("kind", "")
    if kind not in KINDS:
        errors.setdefault("kind", f"choose one of {', '.join(KINDS)}")
        return {"kind": kind}
    if kind == "cron":
        return {"kind": kind, "expression": build_cron(values, errors)}
    if kind == "interval":
        text = values.get("interval_seconds", "").strip()
        try:
            seconds: float = float(text)
        except ValueError:
            errors.setdefault("interval_seconds", f"give a number of seconds, got {text!r}")
            seconds = 0.0
        return {"kind": kind, "seconds": int(seconds) if seconds.is_integer() else seconds}
    if kind == "once":
        return {"kind": kind, "at": _local_moment(values, errors)}
    if kind == "window":
        days = [day for day in DAYS if day in values.get("window_days", [])]
        start, end = values.get("window_start", "").strip(), values.get("window_end", "").strip()
        return {"kind": kind, "days": days, "start": start, "end": end}
    if kind == "queue":
        counts = {name: _whole_number(values, f"queue_{name}", errors) for name in ("min_items", "max_runs")}
        return {"kind": kind, "queue": values.get("queue_name", "").strip(), **counts}
    return {"kind": kind, "robot": values.get("event_robot", "").strip(), "on": values.get("event_on", "")}


def _whole_number(values: Mapping[str, Any], key: str, errors: dict[str, str]) -> int:
    text = str(values.get(key, "")).strip()
    if not text.isdigit():
        errors.setdefault(key, f"give a whole number, got {text!r}")
        return 0
    return int(text)


def _local_moment(values: Mapping[str, Any], errors: dict[str, str]) -> str:
    """A "YYYY-MM-DDTHH:MM" typed in the schedule's zone, as ISO 8601 with its UTC offset."""
    text = str(values.get("once_at", "")).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        errors.setdefault("once_at", f"give a date and time, e.g. 2027-01-04T09:00, got {text!r}")
        return text
    if moment.tzinfo is None:
        zone = _zone(values.get("timezone", "").strip())
        if zone is None:
            return text  # the timezone's own error says what is wrong
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def target_args(values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The action's args: the JSON object typed, with the picked robot as `name` for robots.* actions."""
    text = values.get("args", "").strip() or "{}"
    try:
        args = json.loads(text)
    except ValueError as exc:
        errors.setdefault("args", f"not JSON: {exc}")
        args = {}
    if not isinstance(args, dict):
        errors.setdefault("args", 'give a JSON object, e.g. {"seconds": 5}')
        args = {}
    robot = values.get("robot", "").strip()
    if values.get("action", "").startswith(ROBOT_TARGET_PREFIX) and robot:
        args["name"] = robot
    return args


def _float_text(values: Mapping[str, Any], key: str) -> str:
    return values.get(key, "").strip() or "0"


def schedule_data(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ScheduleCreate fields (without the name) from the form's text; FormInvalid names each field the form
    itself cannot read."""
    errors: dict[str, str] = {}
    data = {
        "target": {"action": values.get("action", "").strip(), "args": target_args(values, errors)},
        "trigger": trigger_of(values, errors),
        "timezone": values.get("timezone", "").strip(),
        "calendars": list(values.get("calendars", [])),
        "enabled": values.get("enabled") == "on",
        "misfire": {"policy": values.get("misfire_policy", ""), "grace_seconds": _float_text(values, "misfire_grace")},
        "overlap": values.get("overlap", ""),
        "jitter_seconds": _float_text(values, "jitter_seconds"),
        "description": values.get("description", "").strip(),
        "tags": [tag.strip() for tag in values.get("tags", "").split(",") if tag.strip()],
    }
    if errors:
        raise FormInvalid(errors)
    return data


def parse_create(values: Mapping[str, Any]) -> ScheduleCreate:
    """A ScheduleCreate from the form; FormInvalid names each field that is wrong."""
    data = schedule_data(values)
    try:
        return ScheduleCreate.model_validate({**data, "name": values.get("name", "").strip()})
    except ValidationError as exc:
        raise FormInvalid(field_errors(exc)) from None


def field_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = ".".join(str(part) for part in error.get("loc", ()))
        message = error.get("msg", "invalid")
        if loc == "name" and error.get("type") == "string_pattern_mismatch":
            message = "use 1 to 64 letters, digits, '_', '.' or '-' (no spaces)"
        errors.setdefault(form_key(loc) or "name", message)
    return errors


def day_calendar(calendar: CalendarOut) -> DayCalendar:
    """A calendar as the timing rules read it (the same as the engine's, from what the service answers)."""
    return DayCalendar(
        name=calendar.name,
        dates=frozenset(calendar.dates),
        holidays=tuple((item.country, item.subdiv) for item in calendar.holidays),
    )


def calendar_dates(text: str) -> tuple[list[date], str | None]:
    """ISO dates, one per line or comma separated; the first bad one named."""
    days: list[date] = []
    for item in text.replace(",", "\n").split():
        try:
            days.append(date.fromisoformat(item))
        except ValueError:
            return days, f"{item!r} is not a date YYYY-MM-DD"
    return days, None


def calendar_holidays(text: str) -> list[dict[str, str | None]]:
    """Countries with an optional region: "DE", "DE-BY", one per line or comma separated."""
    found: list[dict[str, str | None]] = []
    for item in text.replace(",", "\n").split():
        country, _, subdiv = item.strip().partition("-")
        found.append({"country": country.upper(), "subdiv": subdiv.upper() or None})
    return found


def describe_trigger(trigger: Mapping[str, Any]) -> str:
    """A trigger in words, for the list and the schedule page."""
    kind = trigger.get("kind")
    if kind == "cron":
        return cron_in_words(str(trigger.get("expression", "")))
    if kind == "interval":
        return f"every {_duration(float(trigger.get('seconds', 0)))}"
    if kind == "once":
        return f"once at {trigger.get('at')}"
    if kind == "window":
        days = _day_ranges(list(trigger.get("days", [])))
        return f"keep running {days} {trigger.get('start')}-{trigger.get('end')}"
    if kind == "run_event":
        on = trigger.get("on")
        return f"when a run of {trigger.get('robot')} {'ends' if on == 'ended' else on}"
    if kind == "queue":
        return (
            f"when {trigger.get('queue')} has {trigger.get('min_items')}+ ready items, up to "
            f"{trigger.get('max_runs')} runs (checked every {_duration(float(trigger.get('check_seconds', 10)))})"
        )
    return str(kind)


def _duration(seconds: float) -> str:
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{number_text(seconds)} s"


def _day_ranges(days: list[str]) -> str:
    numbers = sorted(DAYS.index(day) for day in days if day in DAYS)
    if numbers == list(range(7)):
        return "every day"
    if numbers and numbers == list(range(numbers[0], numbers[-1] + 1)) and len(numbers) > 2:
        return f"{DAY_TITLES[numbers[0]]}-{DAY_TITLES[numbers[-1]]}"
    return ", ".join(DAY_TITLES[number] for number in numbers)


def builder_of(expression: str) -> dict[str, Any]:
    """The builder's fields for an expression of one of its own shapes (what build_cron makes of them is the same
    expression); "custom" for any other."""
    fields = expression.split()
    found: dict[str, Any] = {"cron_mode": "custom"}
    if len(fields) == 6 and fields[1:] == ["*"] * 5 and re.fullmatch(r"\*/\d{1,2}", fields[0]):
        found = {"cron_mode": "seconds", "cron_every": fields[0][2:]}
    elif len(fields) == 5:
        minute, hour, dom, month, dow = fields
        clock = re.fullmatch(r"\d{1,2}", minute) and re.fullmatch(r"\d{1,2}", hour) and month == "*"
        at = f"{int(hour):02d}:{int(minute):02d}" if clock else ""
        if re.fullmatch(r"\*/\d{1,2}", minute) and [hour, dom, month, dow] == ["*"] * 4:
            found = {"cron_mode": "minutes", "cron_every": minute[2:]}
        elif minute.isdigit() and [hour, dom, month, dow] == ["*"] * 4:
            found = {"cron_mode": "hourly", "cron_minute": minute}
        elif clock and dom == "*" and dow == "*":
            found = {"cron_mode": "daily", "cron_time": at}
        elif clock and dom == "*" and dow == "mon-fri":
            found = {"cron_mode": "weekdays", "cron_time": at}
        elif clock and dom == "*" and dow.split(",") == [day for day in DAYS if day in dow.split(",")]:
            found = {"cron_mode": "weekly", "cron_time": at, "cron_days": dow.split(",")}
        elif clock and dow == "*" and dom.isdigit():
            found = {"cron_mode": "monthly", "cron_time": at, "cron_dom": dom}
    if found["cron_mode"] != "custom" and build_cron({**found}, {}) != expression:
        return {"cron_mode": "custom"}
    return found


def cron_in_words(expression: str) -> str:
    """The builder's own shapes in words; any other expression as it is."""
    fields = expression.split()
    if len(fields) == 6 and fields[1:] == ["*"] * 5 and fields[0].startswith("*/"):
        return f"every {fields[0][2:]} seconds"
    if len(fields) != 5:
        return f"cron {expression}"
    minute, hour, dom, month, dow = fields
    if minute.startswith("*/") and [hour, dom, month, dow] == ["*"] * 4:
        return f"every {minute[2:]} minutes"
    if minute.isdigit() and [hour, dom, month, dow] == ["*"] * 4:
        return f"every hour at minute {minute}"
    if minute.isdigit() and hour.isdigit() and month == "*":
        at = f"{int(hour):02d}:{int(minute):02d}"
        if dom == "*" and dow == "*":
            return f"every day at {at}"
        if dom == "*" and dow in ("mon-fri", "1-5"):
            return f"Monday to Friday at {at}"
        if dom == "*" and all(day in DAYS for day in dow.split(",")):
            return f"{_day_ranges(dow.split(','))} at {at}"
        if dow == "*" and dom.isdigit():
            return f"on day {dom} of each month at {at}"
    return f"cron {expression}"
