"""The robot form's "Keep leftovers" box: checked is sent as "on", unchecked is not sent at all."""

from __future__ import annotations

from datetime import UTC, datetime

from robofleet.robots.panel_forms import blank_form, form_of, parse_create, parse_update
from robofleet.robots.schemas import RobotOut

FIELDS = {
    "name": "mail",
    "agent": "local",
    "argv": "python3\nmail.py",
    "safe_stop_timeout": "30",
    "max_concurrent": "1",
}
POLICY = {"restart.policy": "never", "restart.backoff_seconds": "5", "restart.give_up_after": "5"}
FORM = {**FIELDS, **POLICY, "restart.window_seconds": "600"}


def test_a_new_robot_ends_its_leftovers_unless_the_box_is_checked() -> None:
    assert blank_form().values["keep_leftovers"] == ""
    assert parse_create(FORM).keep_leftovers is False
    assert parse_create({**FORM, "keep_leftovers": "on"}).keep_leftovers is True


def test_the_edit_form_shows_and_changes_the_box() -> None:
    robot = RobotOut(name="mail", argv=["python3", "mail.py"], keep_leftovers=True, created_at=datetime.now(UTC))
    assert form_of(robot).values["keep_leftovers"] == "on"
    unchecked = parse_update(FORM, robot)
    assert unchecked.keep_leftovers is False
    assert "keep_leftovers" not in parse_update({**FORM, "keep_leftovers": "on"}, robot).model_dump(exclude_unset=True)
