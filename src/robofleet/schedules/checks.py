"""What a schedule must be before it is stored: a target the writer may submit itself, a trigger that parses, known
calendars and robots, no chain that comes back on itself. Each refusal names its field (422), or is the writer's
own lack of a permission (403); nothing is saved when one fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from robofleet.activities.registry import Action, Registry
from robofleet.auth.permissions import RobotRef
from robofleet.auth.principal import Principal, system_principal
from robofleet.errors import Invalid, NotFound
from robofleet.robots.service import RobotsService
from robofleet.schedules.calendars import CalendarError, check_holidays
from robofleet.schedules.chains import Edge, cycle_through, edge_of
from robofleet.schedules.triggers import QueueTrigger, Trigger, TriggerError, parse_trigger

# Actions that act on the robot named in their `name` argument: the writer needs the action's permission on it.
ROBOT_PREFIX = "robots."


def invalid(field: str, reason: str, code: str = "invalid") -> Invalid:
    return Invalid(f"{field}: {reason}", details={"field": field, "reason": reason}, code=code)


@dataclass(frozen=True)
class Checked:
    action: Action
    args: dict[str, Any]  # as the action's model gives them back (defaults filled)
    trigger: Trigger
    robot: str | None  # the robot the target acts on, when it is a robots.* action


def target_robot(action: str, args: dict[str, Any]) -> str | None:
    name = args.get("name")
    return name if action.startswith(ROBOT_PREFIX) and isinstance(name, str) else None


def check_target(
    registry: Registry, robots: RobotsService, principal: Principal, action_name: str, args: dict[str, Any]
) -> tuple[Action, dict[str, Any], str | None]:
    """The action, its args validated by its own model, and its robot. Invalid for an unknown action, args that
    do not fit, an action with secret args (they would be stored) or an unknown robot; Forbidden when `principal`
    could not submit it itself (the action's permission, on the robot for robots.* actions)."""
    if action_name not in registry:
        raise invalid("target.action", f"no action named {action_name!r}", "unknown_action")
    action = registry.authorize(principal, action_name)
    if action.has_secrets:
        raise invalid("target.action", f"{action_name} takes secret arguments, which a schedule would have to store")
    try:
        params: BaseModel = action.parse(args)
    except Invalid as exc:
        errors = (exc.details or {}).get("errors") or [{"field": "", "message": exc.message}]
        first = errors[0]
        field = "target.args" + (f".{first['field']}" if first["field"] else "")
        raise invalid(field, first["message"]) from None
    checked_args = params.model_dump(mode="json", exclude_unset=True)
    robot = target_robot(action_name, checked_args)
    if robot is not None:
        try:
            found = robots.get_robot(principal, robot)  # NotFound also for a robot outside the writer's scope
        except NotFound:
            raise invalid("target.args.name", f"no robot named {robot!r}", "unknown_robot") from None
        principal.require(action.permission, RobotRef(found.name, tuple(found.tags)))
    return action, checked_args, robot


def check_trigger(spec: dict[str, Any], timezone: str) -> Trigger:
    try:
        return parse_trigger(spec, timezone)
    except TriggerError as exc:
        raise invalid(exc.field, exc.message) from None


def check_schedule(
    registry: Registry,
    robots: RobotsService,
    principal: Principal,
    *,
    action: str,
    args: dict[str, Any],
    trigger: dict[str, Any],
    timezone: str,
    chains: list[Edge],
    queue_exists: Callable[[str], bool] = lambda name: False,
) -> Checked:
    """Every rule of one schedule but its calendars (store_ops reads those). `chains`: the run-event edges of the
    other schedules, for the cycle check."""
    found, checked_args, robot = check_target(registry, robots, principal, action, args)
    parsed = check_trigger(trigger, timezone)
    if parsed.kind == "window" and action != "robots.start":
        raise invalid("target.action", "a window keeps a robot running: its target must be robots.start")
    if isinstance(parsed, QueueTrigger):
        if action != "robots.start":
            raise invalid(
                "target.action", "a queue trigger starts robots to work the queue: its target must be robots.start"
            )
        if not queue_exists(parsed.queue):
            raise invalid("trigger.queue", f"no queue named {parsed.queue!r}", "unknown_queue")
    if parsed.kind == "run_event":
        source = trigger.get("robot")
        try:
            robots.get_robot(principal, str(source))
        except NotFound:
            raise invalid("trigger.robot", f"no robot named {source!r}", "unknown_robot") from None
        new = edge_of(trigger, action, checked_args)
        if new is not None:
            cycle = cycle_through(chains, new)
            if cycle is not None:
                raise invalid("trigger.robot", f"the chain {' → '.join(cycle)} comes back to where it starts", "cycle")
    return Checked(found, checked_args, parsed, robot)


def check_calendar_holidays(holidays: list[dict[str, Any]]) -> None:
    for index, item in enumerate(holidays):
        try:
            check_holidays(item["country"], item.get("subdiv"))
        except CalendarError as exc:
            raise invalid(f"holidays[{index}].{exc.field.rpartition('.')[2]}", exc.message) from None


def require_may_act(
    registry: Registry, robots: RobotsService, principal: Principal, action: str, robot: str | None
) -> None:
    """Forbidden unless `principal` may submit a stored schedule's target itself: the action's permission, on its
    robot for robots.* actions (a target gone since is checked for what is left of it)."""
    if action in registry:
        found = registry.authorize(principal, action)
        if robot is not None:
            try:
                out = robots.get_robot(system_principal("schedules"), robot)
            except NotFound:
                return  # gone: the schedule is broken and fires nothing
            principal.require(found.permission, RobotRef(out.name, tuple(out.tags)))
