"""Who may see what an activity was asked and answered: its requester, and whoever holds its action's permission.

Activities carry other domains' data (a users.list result, a settings.read tree), so activities:read alone shows
that an activity ran, never its args or result. The same rule decides who may cancel one."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from robofleet.activities.registry import Registry
from robofleet.activities.schemas import ActivityOut
from robofleet.auth.permissions import robot_scope
from robofleet.auth.principal import Principal

WITHHELD = {"withheld": "needs the action's permission"}


def is_requester(principal: Principal, requested_by: str) -> bool:
    # requested_by is the requester's actor: "name" or "name (token id)"; usernames hold no spaces.
    return principal.user_id is not None and requested_by.split(" ", 1)[0] == principal.username


def target_robot(action: str, args: Any) -> str | None:
    """The one robot an activity is about, when its args name one (robots.* say `name`, others `robot`)."""
    if not isinstance(args, dict):
        return None
    robot = args.get("name") if action.startswith("robots.") else args.get("robot")
    return robot if isinstance(robot, str) else None


def may_see(principal: Principal, registry: Registry, action: str, args: dict[str, Any], requested_by: str) -> bool:
    if is_requester(principal, requested_by):
        return True
    if action not in registry:
        return principal.can("*")
    permission = registry.get(action).permission
    if not principal.can(permission):
        return False
    scope = robot_scope(principal.grants, permission)
    if scope is None:
        return True
    # Narrowed to some robots: an answer about one robot of its globs, never a list (it tells of others).
    robot = target_robot(action, args)
    return robot is not None and any(fnmatchcase(robot, glob) for glob in scope[0])


def withheld_error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    # Its code says how it ended; its message and details may name what the caller may not see (a user, a robot).
    return None if error is None else {"code": error.get("code", "error"), "message": "withheld"}


def shown_to(principal: Principal, registry: Registry, out: ActivityOut) -> ActivityOut:
    """`out` as `principal` may see it: args, result and the error's words withheld unless it may see them."""
    if may_see(principal, registry, out.action, out.args, out.requested_by):
        return out
    return out.model_copy(update={"args": WITHHELD, "result": None, "error": withheld_error(out.error)})


def payload_shown_to(principal: Principal, registry: Registry, payload: dict[str, Any]) -> dict[str, Any]:
    """The same for an event's payload (an activity as a dict)."""
    if may_see(principal, registry, payload["action"], payload.get("args") or {}, payload["requested_by"]):
        return payload
    return {**payload, "args": WITHHELD, "result": None, "error": withheld_error(payload.get("error"))}
