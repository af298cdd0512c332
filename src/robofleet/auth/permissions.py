"""Permission strings and how roles grant them. Pure functions: no store, no clock."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

# Every permission robofleet checks, so roles can be validated and the panel can list them.
PERMISSIONS: dict[str, str] = {
    "users:read": "List and view users",
    "users:write": "Create, change, disable and delete users",
    "roles:read": "List and view roles",
    "roles:write": "Create, change and delete roles",
    "tokens:read": "List API tokens of every user",
    "tokens:write": "Create and revoke API tokens for any user",
    "audit:read": "Read the audit log",
    "settings:read": "Read the effective settings (secrets masked)",
    "metrics:read": "Read Prometheus metrics",
    "activities:read": "List activities",
    "activities:run": "Submit activities",
    "console:execute": "Run Python inside the orchestrator (when enabled)",
    "robots:read": "List and view robots and runs",
    "robots:write": (
        "Change robots' description, tags, limits, timeouts, restart policy and leftovers, and delete robots; "
        "creating a robot or changing its command line (argv, cwd, agent, env, session) takes agents:admin too"
    ),
    "robots:start": "Start robots",
    "robots:stop": "Stop, pause, resume and kill runs",
    "schedules:read": "List schedules",
    "schedules:write": "Change schedules",
    "queues:read": "List queues and items",
    "queues:write": "Create, change and delete queues; add, retry and delete their items",
    "queues:work": "Lease queue items and report on them (complete, fail, extend, release)",
    "logs:read": "Read logs",
    "logs:write": "Send logs",
    "logs:admin": "Send logs as the orchestrator itself (source orchestrator)",
    "agents:read": "List agents and their system info",
    "agents:connect": "Connect as an agent",
    "agents:admin": (
        "Run code on agents: remote shell, file transfer, defining robots' command lines "
        "(argv, cwd, agent, env, session), which run as the agent's OS user, and defining graphical sessions that "
        "attach to a display or start a window manager"
    ),
    "sessions:read": "View graphical sessions and screenshots",
    "sessions:control": "Send input to graphical sessions (click, type, keys, scroll)",
    "sessions:admin": (
        "Create, change, delete and restart graphical sessions (an attach session or one with a window manager "
        "takes agents:admin too)"
    ),
    "alerts:read": "See fired alerts, alert rules, channels (secrets never shown) and the delivery log",
    "alerts:admin": "Acknowledge alerts; create, change and delete alert rules and channels",
}

# The permissions a role may narrow to name globs or tags: on robots, and on queues and graphical sessions (by their
# own names and tags).
ROBOT_SCOPED_PREFIXES = ("robots:", "queues:", "sessions:")

BUILTIN_ROLES: dict[str, tuple[str, list[str]]] = {
    "admin": ("Everything, including users, roles and settings", ["*"]),
    "operator": (
        "Runs the fleet day to day: robots, schedules, queues, logs, activities",
        [
            "robots:*",
            "schedules:*",
            "queues:*",
            "logs:read",
            "agents:read",
            "sessions:*",
            "activities:*",
            "audit:read",
            "settings:read",
            "alerts:*",
        ],
    ),
    "viewer": (
        "Sees everything, changes nothing",
        [
            "robots:read",
            "schedules:read",
            "queues:read",
            "logs:read",
            "agents:read",
            "sessions:read",
            "activities:read",
            "alerts:read",
        ],
    ),
    "robot": ("What a robot process needs: its queue items and its logs", ["queues:*", "logs:write", "robots:read"]),
    "agent": ("What an agent needs: connect and send logs", ["agents:connect", "logs:write"]),
}


@dataclass(frozen=True)
class Grant:
    """One role's contribution: patterns like `robots:*`, optionally narrowed to some robots."""

    patterns: tuple[str, ...]
    robot_globs: tuple[str, ...] = ()
    robot_tags: tuple[str, ...] = ()

    def matches(self, permission: str) -> bool:
        return any(pattern_matches(pattern, permission) for pattern in self.patterns)

    def covers_robot(self, permission: str, robot: RobotRef | None) -> bool:
        if not permission.startswith(ROBOT_SCOPED_PREFIXES) or not (self.robot_globs or self.robot_tags):
            return True
        if robot is None:
            # An unscoped question ("may list robots at all?") is answered yes; lists filter per robot.
            return True
        return any(fnmatchcase(robot.name, glob) for glob in self.robot_globs) or bool(
            set(self.robot_tags) & set(robot.tags)
        )


@dataclass(frozen=True)
class RobotRef:
    name: str
    tags: tuple[str, ...] = field(default_factory=tuple)


def pattern_matches(pattern: str, permission: str) -> bool:
    if pattern == "*" or pattern == permission:
        return True
    if pattern.endswith(":*"):
        return permission.startswith(pattern[:-1])
    return False


def is_allowed(
    grants: Sequence[Grant], permission: str, *, scopes: Sequence[str] = (), robot: RobotRef | None = None
) -> bool:
    """True when some grant gives `permission` (for `robot`, if given) and the token scopes allow it."""
    if scopes and not any(pattern_matches(scope, permission) for scope in scopes):
        return False
    return any(grant.matches(permission) and grant.covers_robot(permission, robot) for grant in grants)


def robot_scope(grants: Sequence[Grant], permission: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The robot name globs and tags `permission` is narrowed to by the grants that give it; None when one of them
    gives it for every robot. (For permissions on what robots leave behind, such as their logs.)"""
    globs: list[str] = []
    tags: list[str] = []
    for grant in grants:
        if not grant.matches(permission):
            continue
        if not (grant.robot_globs or grant.robot_tags):
            return None
        globs += grant.robot_globs
        tags += grant.robot_tags
    return tuple(globs), tuple(tags)


def unknown_patterns(patterns: Iterable[str]) -> list[str]:
    """The patterns that can never match a known permission (typos, invented domains)."""
    domains = {name.split(":")[0] for name in PERMISSIONS}
    bad = []
    for pattern in patterns:
        if pattern == "*" or pattern in PERMISSIONS:
            continue
        if pattern.endswith(":*") and pattern[:-2] in domains:
            continue
        bad.append(pattern)
    return bad
