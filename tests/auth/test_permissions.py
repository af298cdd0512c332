"""Permission resolution is a pure function of grants, scopes and the robot asked about."""

from __future__ import annotations

from robofleet.auth.permissions import (
    BUILTIN_ROLES,
    PERMISSIONS,
    Grant,
    RobotRef,
    is_allowed,
    robot_scope,
    unknown_patterns,
)


def test_exact_wildcard_and_domain_patterns() -> None:
    assert is_allowed([Grant(("users:read",))], "users:read")
    assert not is_allowed([Grant(("users:read",))], "users:write")
    assert is_allowed([Grant(("users:*",))], "users:write")
    assert not is_allowed([Grant(("users:*",))], "usersx:write")
    assert is_allowed([Grant(("*",))], "anything:at-all")
    assert not is_allowed([], "users:read")


def test_token_scopes_only_narrow() -> None:
    admin = [Grant(("*",))]
    assert is_allowed(admin, "robots:start", scopes=["robots:*"])
    assert not is_allowed(admin, "users:write", scopes=["robots:*"])
    assert not is_allowed([Grant(("logs:read",))], "robots:start", scopes=["robots:*"])


def test_robot_scoped_roles() -> None:
    billing = Grant(("robots:*",), robot_globs=("billing-*",), robot_tags=("finance",))
    assert is_allowed([billing], "robots:start", robot=RobotRef("billing-invoices"))
    assert is_allowed([billing], "robots:start", robot=RobotRef("hr-onboarding", ("finance",)))
    assert not is_allowed([billing], "robots:start", robot=RobotRef("hr-onboarding", ("hr",)))
    # The question "may start robots at all" is answered yes; the robot decides when known.
    assert is_allowed([billing], "robots:start")
    # Scopes narrow robot permissions only; other permissions of the role are unaffected.
    mixed = Grant(("robots:read", "logs:read"), robot_globs=("billing-*",))
    assert is_allowed([mixed], "logs:read", robot=RobotRef("hr-onboarding"))
    # What robots leave behind (their logs) is narrowed with robot_scope: None when some grant opens every robot.
    assert robot_scope([mixed, billing], "logs:read") == (("billing-*",), ())
    assert robot_scope([mixed, Grant(("logs:*",))], "logs:read") is None
    assert robot_scope([billing], "logs:read") == ((), ())
    # Another role without scope opens every robot.
    assert is_allowed([billing, Grant(("robots:start",))], "robots:start", robot=RobotRef("hr-x"))


def test_unknown_patterns_are_found() -> None:
    assert unknown_patterns(["robots:*", "users:read", "*"]) == []
    assert unknown_patterns(["robot:start", "users:fly", "nope:*"]) == ["robot:start", "users:fly", "nope:*"]


def test_builtin_roles_use_known_permissions_only() -> None:
    for _description, patterns in BUILTIN_ROLES.values():
        assert unknown_patterns(patterns) == []
    viewer = [Grant(tuple(BUILTIN_ROLES["viewer"][1]))]
    assert not any(is_allowed(viewer, name) for name in PERMISSIONS if not name.endswith(":read"))
    agent = [Grant(tuple(BUILTIN_ROLES["agent"][1]))]
    assert is_allowed(agent, "agents:connect") and not is_allowed(agent, "agents:admin")
