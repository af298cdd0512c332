"""The schedule form's text to a schedule and back: the cron builder's shapes, the trigger of each kind, the
arguments, and every mistake named by the form field it belongs to."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import FormData

from robofleet.schedules.panel_forms import (
    FormInvalid,
    ScheduleForm,
    blank_form,
    build_cron,
    builder_of,
    calendar_dates,
    calendar_holidays,
    cron_in_words,
    describe_trigger,
    parse_create,
    submitted,
    trigger_of,
)


def values(**changes: Any) -> dict[str, Any]:
    return {**blank_form().values, "name": "job", "robot": "bot", **changes}


@pytest.mark.parametrize(
    ("fields", "expression", "words"),
    [
        ({"cron_mode": "seconds", "cron_every": "10"}, "*/10 * * * * *", "every 10 seconds"),
        ({"cron_mode": "minutes", "cron_every": "5"}, "*/5 * * * *", "every 5 minutes"),
        ({"cron_mode": "hourly", "cron_minute": "7"}, "7 * * * *", "every hour at minute 7"),
        ({"cron_mode": "daily", "cron_time": "06:05"}, "5 6 * * *", "every day at 06:05"),
        ({"cron_mode": "weekdays", "cron_time": "07:30"}, "30 7 * * mon-fri", "Monday to Friday at 07:30"),
        ({"cron_mode": "weekly", "cron_time": "9:00", "cron_days": ["wed", "mon"]}, "0 9 * * mon,wed",
         "Mon, Wed at 09:00"),
        ({"cron_mode": "monthly", "cron_time": "23:59", "cron_dom": "31"}, "59 23 31 * *",
         "on day 31 of each month at 23:59"),
        ({"cron_mode": "custom", "cron_expression": " 0  30 7 * * sat "}, "0 30 7 * * sat", "cron 0 30 7 * * sat"),
    ],
)  # fmt: skip
def test_the_builder_makes_a_cron_reads_it_back_and_says_it_in_words(
    fields: dict[str, Any], expression: str, words: str
) -> None:
    errors: dict[str, str] = {}
    assert build_cron(fields, errors) == expression and errors == {}
    assert cron_in_words(expression) == words
    back = builder_of(expression)
    assert back["cron_mode"] == fields["cron_mode"]
    assert build_cron({**fields, **back}, {}) == expression


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"cron_mode": "seconds", "cron_every": "0"}, "cron_every"),
        ({"cron_mode": "daily", "cron_time": "24:00"}, "cron_time"),
        ({"cron_mode": "weekly", "cron_time": "08:00", "cron_days": []}, "cron_days"),
        ({"cron_mode": "monthly", "cron_time": "08:00", "cron_dom": "32"}, "cron_dom"),
        ({"cron_mode": "custom", "cron_expression": ""}, "cron_expression"),
    ],
)
def test_a_builder_mistake_is_named_by_its_field(fields: dict[str, Any], key: str) -> None:
    errors: dict[str, str] = {}
    build_cron(fields, errors)
    assert list(errors) == [key]


def test_each_kind_gives_its_trigger_and_a_once_time_gets_the_zone_offset() -> None:
    errors: dict[str, str] = {}
    assert trigger_of(values(kind="interval", interval_seconds="90"), errors) == {"kind": "interval", "seconds": 90}
    once = trigger_of(values(kind="once", once_at="2027-07-01T09:00", timezone="Europe/Berlin"), errors)
    assert once == {"kind": "once", "at": "2027-07-01T09:00:00+02:00"}
    window = trigger_of(values(kind="window", window_days=["fri", "mon"], window_start="09:00", window_end="24:00"), {})
    assert window == {"kind": "window", "days": ["mon", "fri"], "start": "09:00", "end": "24:00"}
    event = trigger_of(values(kind="run_event", event_robot="a", event_on="failed"), errors)
    assert event == {"kind": "run_event", "robot": "a", "on": "failed"}
    assert errors == {}
    assert describe_trigger(window) == "keep running Mon, Fri 09:00-24:00"
    assert describe_trigger(event) == "when a run of a failed"


def test_a_form_becomes_a_schedule_with_the_picked_robot_as_its_name_argument() -> None:
    made = parse_create(values(tags="a, b,", args='{"x": 1}', calendars=["hols"], enabled=""))
    assert made.name == "job" and made.target.action == "robots.start"
    assert made.target.args == {"x": 1, "name": "bot"}
    assert made.trigger == {"kind": "cron", "expression": "30 7 * * mon-fri"}
    assert made.tags == ["a", "b"] and made.calendars == ["hols"] and made.enabled is False


def test_form_mistakes_are_named_by_field() -> None:
    with pytest.raises(FormInvalid) as caught:
        parse_create(values(args="[1]", kind="interval", interval_seconds="soon"))
    assert set(caught.value.errors) == {"args", "interval_seconds"}
    with pytest.raises(FormInvalid) as caught:
        parse_create(values(name="no spaces allowed", jitter_seconds="5000"))
    assert set(caught.value.errors) == {"name", "jitter_seconds"}


def test_the_service_s_field_names_land_on_the_form_s_fields() -> None:
    form = ScheduleForm(values())
    form.shown_at("trigger.end", "must end after it starts")
    form.shown_at("target.args.name", "no robot named 'x'")
    form.shown_at("target.args.seconds", "too big")
    form.shown_at(None, "you lack robots:start")
    assert form.errors == {"window_end": "must end after it starts", "robot": "no robot named 'x'", "args": "too big"}
    assert form.message == "you lack robots:start"
    assert [label for _, label, _ in form.problems()] == ["Window end", "Robot", "Arguments"]


def test_calendar_text_fields() -> None:
    assert calendar_dates("2026-12-24, 2026-12-31\n")[1] is None
    assert calendar_dates("2026-12-24 24.12.2026")[1] == "'24.12.2026' is not a date YYYY-MM-DD"
    assert calendar_holidays("de-by, AT") == [{"country": "DE", "subdiv": "BY"}, {"country": "AT", "subdiv": None}]


def test_the_fields_of_kinds_not_chosen_keep_their_defaults_and_an_unticked_box_is_off() -> None:
    sent = submitted(FormData([("kind", "interval"), ("interval_seconds", "5"), ("name", "job")]))
    assert sent["interval_seconds"] == "5" and sent["cron_time"] == "07:30" and sent["cron_mode"] == "weekdays"
    assert sent["window_days"] == ["mon", "tue", "wed", "thu", "fri"] and sent["enabled"] == ""
    assert submitted(FormData([("kind", "window")]))["window_days"] == []
