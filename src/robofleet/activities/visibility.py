"""Who may see what an activity was asked and answered: its requester, and whoever holds its action's permission.

Activities carry other domains' data (a users.list result, a settings.read tree), so activities:read alone shows
that an activity ran, never its args or result. The same rule decides who may cancel one."""

from __future__ import annotations

from typing import Any

from robofleet.activities.registry import Registry
from robofleet.activities.schemas import ActivityOut
from robofleet.auth.permissions import RobotRef
from robofleet.auth.principal import Principal

WITHHELD = {"withheld": "needs the action's permission"}


def is_requester(principal: Principal, requested_by: str) -> bool:
    # requested_by is the requester's actor: "name" or "name (token id)"; usernames hold no spaces.
    return principal.user_id is not None and requested_by.split(" ", 1)[0] == principal.username


def may_see(principal: Principal, registry: Registry, action: str, args: dict[str, Any], requested_by: str) -> bool:
    if is_requester(principal, requested_by):
        return True
    if action not in registry:
        return principal.can("*")
    robot = args.get("robot") if isinstance(args, dict) else None
    return principal.can(registry.get(action).permission, RobotRef(robot) if isinstance(robot, str) else None)


def shown_to(principal: Principal, registry: Registry, out: ActivityOut) -> ActivityOut:
    """`out` as `principal` may see it: args and result withheld unless it may see them."""
    if may_see(principal, registry, out.action, out.args, out.requested_by):
        return out
    return out.model_copy(update={"args": WITHHELD, "result": None})


def payload_shown_to(principal: Principal, registry: Registry, payload: dict[str, Any]) -> dict[str, Any]:
    """The same for an event's payload (an activity as a dict)."""
    if may_see(principal, registry, payload["action"], payload.get("args") or {}, payload["requested_by"]):
        return payload
    return {**payload, "args": WITHHELD, "result": None}
