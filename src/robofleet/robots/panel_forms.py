"""The robot form of the panel: a definition as text fields (argv one per line, env NAME=value per line, tags
comma separated) and back into RobotCreate / RobotUpdate, with every mistake named by its field. Secret env values
stay masked both ways: the service knows what a mask stands for."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import ValidationError
from starlette.datastructures import FormData

from robofleet.robots.schemas import RestartPolicy, RobotCreate, RobotOut, RobotUpdate
from robofleet.web import form_state
from robofleet.web.form_state import EnteredForm, number_text, text_of

RESTART_FIELDS = ("policy", "backoff_seconds", "give_up_after", "window_seconds")
POLICIES: tuple[str, ...] = get_args(RestartPolicy.model_fields["policy"].annotation)

# Form keys in the order of the form; "restart.x" is the loc pydantic reports for the nested policy.
LABELS: dict[str, str] = {
    "name": "Name",
    "agent": "Agent",
    "agent_new": "Agent not connected yet",
    "argv": "Command",
    "cwd": "Working directory",
    "env": "Environment",
    "session": "Graphical session",
    "safe_stop_timeout": "Safe stop timeout",
    "max_runtime": "Max run time",
    "max_concurrent": "Max concurrent runs",
    "restart.policy": "Restart policy",
    "restart.backoff_seconds": "Restart backoff",
    "restart.give_up_after": "Give up after",
    "restart.window_seconds": "Failure window",
    "log_format": "Log format",
    "tags": "Tags",
    "description": "Description",
    "keep_leftovers": "Keep leftovers",
}

# Pydantic's wording where it would puzzle an operator; the rest of its messages read well enough.
CLEARER = {
    ("name", "string_pattern_mismatch"): "use 1 to 64 letters, digits, '_', '.' or '-' (no spaces)",
    ("argv", "too_short"): "give the program to run, one argument per line",
    ("agent", "string_too_short"): "name the agent that runs it (local: this server)",
}


class RobotForm(EnteredForm[str]):
    """What the form shows: the text of each field, and the mistakes found in them."""

    labels = LABELS


class FormInvalid(form_state.FormInvalid):
    labels = LABELS


def submitted(form: FormData) -> dict[str, str]:
    """The text of every robot field in a posted form (a missing one is empty)."""
    return {key: text_of(form, key) for key in LABELS}


def blank_form() -> RobotForm:
    defaults = {
        key: info.get_default(call_default_factory=True)
        for key, info in RobotCreate.model_fields.items()
        if not info.is_required()
    }
    return RobotForm(_texts({**defaults, "name": "", "argv": []}))


def form_of(robot: RobotOut) -> RobotForm:
    """The edit form of a robot. Its env comes masked from the service, so secrets never reach the page."""
    return RobotForm(_texts(robot.model_dump()))


def _texts(definition: Mapping[str, Any]) -> dict[str, str]:
    restart = RestartPolicy.model_validate(definition.get("restart") or {})
    return {
        "name": str(definition.get("name", "")),
        "agent": str(definition.get("agent") or ""),
        "agent_new": "",
        "argv": "\n".join(definition.get("argv") or []),
        "cwd": definition.get("cwd") or "",
        "env": "\n".join(f"{key}={value}" for key, value in (definition.get("env") or {}).items()),
        "session": definition.get("session") or "",
        "safe_stop_timeout": number_text(definition.get("safe_stop_timeout")),
        "max_runtime": number_text(definition.get("max_runtime")),
        "max_concurrent": number_text(definition.get("max_concurrent")),
        "restart.policy": restart.policy,
        "restart.backoff_seconds": number_text(restart.backoff_seconds),
        "restart.give_up_after": number_text(restart.give_up_after),
        "restart.window_seconds": number_text(restart.window_seconds),
        "tags": ", ".join(definition.get("tags") or []),
        "description": str(definition.get("description") or ""),
        "keep_leftovers": "on" if definition.get("keep_leftovers") else "",
        "log_format": str(definition.get("log_format") or "auto"),
    }


def parse_create(values: Mapping[str, str]) -> RobotCreate:
    """A RobotCreate from the form's text; FormInvalid names each field that is wrong."""
    data, errors = _fields(values)
    data["name"] = values.get("name", "").strip()
    try:
        created = RobotCreate.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid({**field_errors(exc), **errors}) from None
    if errors:
        raise FormInvalid(errors)
    return created


def parse_update(values: Mapping[str, str], current: RobotOut) -> RobotUpdate:
    """A RobotUpdate holding only the fields that differ from `current`. Env lines left showing the mask go to the
    service as they are: it keeps the stored secrets, and refuses a mask that stands for none."""
    data, errors = _fields(values)
    try:
        full = RobotUpdate.model_validate(data)
    except ValidationError as exc:
        raise FormInvalid({**field_errors(exc), **errors}) from None
    if errors:
        raise FormInvalid(errors)
    before = {**current.model_dump(include=set(data)), "restart": current.restart}
    return RobotUpdate(**{key: getattr(full, key) for key in data if getattr(full, key) != before[key]})


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first problem of each form field, worded for the person who typed it."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        key = ".".join(loc[:2]) if loc[:1] == ["restart"] else (loc[0] if loc else "form")
        errors.setdefault(key, CLEARER.get((key, error.get("type", "")), error.get("msg", "invalid")))
    return errors


def _fields(values: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Every field but the name, as the schemas take them; numbers stay text for pydantic to parse and check."""
    errors: dict[str, str] = {}
    env: dict[str, str] = {}
    for line_number, line in enumerate(values.get("env", "").splitlines(), start=1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not key:
            errors.setdefault("env", f"line {line_number} ({line.strip()!r}) is not NAME=value")
        elif key in env:
            errors.setdefault("env", f"line {line_number}: {key} is set twice")
        else:
            env[key] = value.strip()

    def text(key: str) -> str:
        return values.get(key, "").strip()

    data: dict[str, Any] = {
        # A name typed for an agent not connected yet wins over the pick among the known ones.
        "agent": text("agent_new") or text("agent"),
        "argv": [line.strip() for line in values.get("argv", "").splitlines() if line.strip()],
        "cwd": text("cwd") or None,
        "env": env,
        "session": text("session") or None,
        "safe_stop_timeout": text("safe_stop_timeout"),
        "max_runtime": text("max_runtime") or None,
        "max_concurrent": text("max_concurrent"),
        "restart": {name: text(f"restart.{name}") for name in RESTART_FIELDS},
        "tags": [tag.strip() for tag in values.get("tags", "").split(",") if tag.strip()],
        "description": text("description"),
        "keep_leftovers": text("keep_leftovers") == "on",  # an unchecked box is not sent at all
        "log_format": text("log_format") or "auto",
    }
    return data, errors
