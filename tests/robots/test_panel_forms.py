"""The panel's robot form as text and back: what each field accepts, how mistakes are named, and that an edit sends
only what changed. Pure functions: no server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from robofleet.robots.panel_forms import FormInvalid, blank_form, form_of, parse_create, parse_update
from robofleet.robots.schemas import RobotOut


def typed(**changes: str) -> dict[str, str]:
    return {**blank_form().values, "name": "invoices", "argv": "python3\ninvoices.py\n", **changes}


def test_text_fields_become_a_definition() -> None:
    made = parse_create(
        typed(env="A=1\n\nB = two words \n", tags="finance, nightly,", max_runtime="", cwd=" /opt/robots ")
    )
    assert made.argv == ["python3", "invoices.py"] and made.cwd == "/opt/robots" and made.max_runtime is None
    assert made.env == {"A": "1", "B": "two words"} and made.tags == ["finance", "nightly"]
    assert made.safe_stop_timeout == 30 and made.restart.policy == "never" and made.max_concurrent == 1


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"name": "two words"}, "name", "no spaces"),
        ({"argv": "\n  \n"}, "argv", "program"),
        ({"env": "A=1\nB"}, "env", "line 2 ('B') is not NAME=value"),
        ({"env": "A=1\nA=2"}, "env", "A is set twice"),
        ({"safe_stop_timeout": "0"}, "safe_stop_timeout", "greater than 0"),
        ({"max_concurrent": "2.5"}, "max_concurrent", "integer"),
        ({"restart.window_seconds": "abc"}, "restart.window_seconds", "number"),
    ],
)
def test_each_mistake_names_its_field(changes: dict[str, str], field: str, says: str) -> None:
    with pytest.raises(FormInvalid) as caught:
        parse_create(typed(**changes))
    assert field in caught.value.errors and says in caught.value.errors[field]


def robot(**fields: object) -> RobotOut:
    base: dict[str, object] = {
        "name": "invoices",
        "argv": ["python3", "invoices.py"],
        "env": {"MODE": "prod", "API_TOKEN": "********"},
        "created_at": datetime.now(UTC),
    }
    return RobotOut.model_validate({**base, **fields})


def test_an_edit_sends_only_what_changed_and_leaves_masked_secrets_masked() -> None:
    current = robot()
    values = form_of(current).values
    assert values["env"] == "MODE=prod\nAPI_TOKEN=********"
    assert not parse_update(values, current).model_fields_set

    # The service keeps the secret behind a mask that comes back (tests/robots/test_masked_env.py).
    change = parse_update({**values, "description": "new", "env": values["env"] + "\nEXTRA=1"}, current)
    assert change.model_fields_set == {"description", "env"}
    assert change.env == {"MODE": "prod", "API_TOKEN": "********", "EXTRA": "1"}

    cleared = parse_update({**values, "max_runtime": ""}, robot(max_runtime=60))
    assert cleared.model_fields_set == {"max_runtime"} and cleared.max_runtime is None
