"""Who is calling: a user through a token or panel session, or the local CLI."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime

from robofleet.auth.models import Role, User
from robofleet.auth.permissions import Grant, RobotRef, is_allowed
from robofleet.errors import Forbidden

# The built-in user that owns every robot run's own API token (it cannot log in); such a token is bound to its run.
RUN_USER = "robot-runs"


@dataclass(frozen=True)
class RunBinding:
    """The one robot run a token acts for: it may act as that robot and run only (its logs, its queue items)."""

    run_id: int
    robot: str


@dataclass(frozen=True)
class Principal:
    username: str
    user_id: int | None
    grants: tuple[Grant, ...]
    via: str  # "token" | "session" | "cli" | "system"
    scopes: tuple[str, ...] = ()
    token_id: str | None = None
    csrf_token: str | None = None
    source_ip: str = ""
    roles: tuple[str, ...] = ()
    run: RunBinding | None = None  # set for a robot run's own token
    agent: str | None = None  # set for a token bound to an agent name: the only name it connects and logs as
    token_expires_at: datetime | None = None  # a token's own expiry: no token it makes outlives it

    def can(self, permission: str, robot: RobotRef | None = None) -> bool:
        return is_allowed(self.grants, permission, scopes=self.scopes, robot=robot)

    def require(self, permission: str, robot: RobotRef | None = None) -> None:
        """Raise Forbidden unless this caller holds `permission` (for `robot`, when given)."""
        if not self.can(permission, robot):
            kind = {"queues": "queue", "sessions": "session"}.get(permission.partition(":")[0], "robot")
            target = f" on {kind} {robot.name!r}" if robot else ""
            raise Forbidden(
                f"{self.username} lacks the permission {permission!r}{target}",
                details={"permission": permission},
            )

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        if self.via == "token" and self.token_id:
            return f"{self.username} (token {self.token_id})"
        return self.username


def grants_of(roles: list[Role]) -> tuple[Grant, ...]:
    return tuple(Grant(tuple(role.permissions), tuple(role.robot_globs), tuple(role.robot_tags)) for role in roles)


def cli_principal() -> Principal:
    """The local command line: whoever can open the store file or database is its administrator."""
    return Principal(username=f"cli:{getpass.getuser()}", user_id=None, grants=(Grant(("*",)),), via="cli")


SCHEDULE_ACTOR = "schedule:"  # no username holds a ":", so nobody else acts under this prefix


def schedule_actor(schedule: str) -> str:
    """Who a schedule's fires act as."""
    return f"{SCHEDULE_ACTOR}{schedule}"


def system_principal(name: str = "system") -> Principal:
    return Principal(username=name, user_id=None, grants=(Grant(("*",)),), via="system")


def principal_for_user(user: User, *, scopes: list[str], source_ip: str = "", via: str = "token") -> Principal:
    """The principal of a stored request (an activity queued before a restart), with the user's roles now."""
    return Principal(
        username=user.username,
        user_id=user.id,
        grants=grants_of(user.roles),
        via=via,
        scopes=tuple(scopes),
        source_ip=source_ip,
        roles=tuple(role.name for role in user.roles),
    )
