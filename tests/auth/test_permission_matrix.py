"""The permission matrix: every route of the OpenAPI document called by every built-in role, a role narrowed to
some robots, a robot run's token and no one. A caller without the route's permission gets 403 (no one: 401); one
with it is never refused; one narrowed away from a robot finds no such robot (404), as if it did not exist.

The expectations come from the roles as data and a matcher written here, not from robofleet's own checks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from robofleet.auth.permissions import BUILTIN_ROLES
from robofleet.auth.principal import RUN_USER, RunBinding, system_principal
from robofleet.auth.schemas import TokenCreate
from robofleet.auth.tokens import create_token
from robofleet.auth.users import ensure_service_user
from robofleet.orchestrator import build_registry
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import all_routers
from robofleet.web.security import Require
from tests.conftest import MakeUser, bearer

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

NARROWED = ("billing-ops", ["robots:*", "logs:read", "activities:read"], ["billing-*"])
RUN_SCOPES = ["logs:write", "queues:*"]
# The robots the narrowed role sees and does not see; both exist.
IN_SCOPE, OUT_OF_SCOPE = "billing-a", "hr-payroll"


def grants(patterns: list[str], permission: str) -> bool:
    return any(p == "*" or p == permission or (p.endswith(":*") and permission.startswith(p[:-1])) for p in patterns)


def required_permissions() -> dict[tuple[str, str], str | None]:
    table: dict[tuple[str, str], str | None] = {}
    for router in all_routers():
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            guards = [dep.call for dep in route.dependant.dependencies if isinstance(dep.call, Require)]
            for method in route.methods:
                table[(method, route.path)] = guards[0].permission if guards else "public"
    return table


def concrete(path: str, robot: str) -> str:
    """A path with its parameters filled: robot routes name `robot`, the rest a value that exists or a plain one."""
    if path.startswith("/api/v1/robots/"):
        return path.replace("{name}", robot)
    values = {"username": "nobody", "name": "local", "run_id": "1", "activity_id": "1", "token_id": "x"}
    if path.startswith("/api/v1/roles/"):
        values["name"] = "viewer"
    return re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "x"), path)


def callers(client: TestClient, store: Store, make_user: MakeUser, admin: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (token, the permission patterns it holds)."""
    name, patterns, globs = NARROWED
    role = {"name": name, "permissions": patterns, "robot_globs": globs}
    assert client.post("/api/v1/roles", headers=bearer(admin), json=role).status_code == 201
    found = {role: (make_user(f"u-{role}", [role]), BUILTIN_ROLES[role][1]) for role in BUILTIN_ROLES}
    found[name] = (make_user("u-billing", [name]), patterns)
    found["norole"] = (make_user("u-norole", []), [])
    robots = system_principal("robots")
    ensure_service_user(store, robots, RUN_USER, ["robot"])
    run = TokenCreate(user=RUN_USER, name="run 1", scopes=RUN_SCOPES, expires_in_days=1)
    run_token = create_token(store, robots, run, run=RunBinding(1, IN_SCOPE)).token
    held = [p for p in RUN_SCOPES if any(grants(BUILTIN_ROLES["robot"][1], q) for q in expand(p))]
    found["run-token"] = (run_token, held)
    return found


def expand(pattern: str) -> list[str]:
    from robofleet.auth.permissions import PERMISSIONS

    return [p for p in PERMISSIONS if grants([pattern], p)]


def test_every_route_for_every_role(client: TestClient, store: Store, make_user: MakeUser, admin_token: str) -> None:
    admin = bearer(admin_token)
    for robot in (IN_SCOPE, OUT_OF_SCOPE):
        made = client.post("/api/v1/robots", headers=admin, json={"name": robot, "argv": ["true"]})
        assert made.status_code == 201, made.text
    openapi: dict[str, Any] = client.get("/openapi.json").json()
    permissions = required_permissions()
    who = callers(client, store, make_user, admin_token)
    checked = 0
    # Destructive calls last: a caller that may delete a robot would otherwise change what the next one sees.
    calls = sorted(
        ((method.upper(), path) for path, item in openapi["paths"].items() for method in item),
        key=lambda call: call[0] == "DELETE",
    )
    for method, path in calls:
        permission = permissions[(method, path)]
        if permission == "public":
            continue
        for robot in (IN_SCOPE, OUT_OF_SCOPE) if "{name}" in path and path.startswith("/api/v1/robots/") else (None,):
            url = concrete(path, robot or "")
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, (method, url, "no one", anonymous.status_code)
            for name, (token, patterns) in who.items():
                allowed = permission is None or grants(patterns, permission)
                if allowed and path.endswith("stream"):
                    continue  # a live stream never ends for an allowed caller (tests/auth/test_streams_end_…)
                body = {} if method in ("POST", "PATCH", "PUT") else None
                answer = client.request(method, url, headers=bearer(token), json=body)
                if name == NARROWED[0] and robot == OUT_OF_SCOPE and allowed:
                    expected: Any = 404
                elif not allowed:
                    expected = 403
                else:
                    expected = "not 401/403"
                got = answer.status_code
                ok = got == expected if isinstance(expected, int) else got not in (401, 403)
                if name in ("run-token", "agent") and path.startswith("/api/v1/tokens") and got == 403:
                    ok = True  # the tokens of runs and agents manage no tokens (tests/auth/test_token_escalation.py)
                assert ok, (method, url, name, permission, got, expected, answer.text[:200])
                checked += 1
    assert checked > 300


# Actions whose permission is declared here, not read from the registry: what each role may do with sessions.
SESSION_ACTIONS = {
    "sessions.list": "sessions:read",
    "sessions.screenshot": "sessions:read",
    "sessions.click": "sessions:control",
    "sessions.type": "sessions:control",
    "sessions.key": "sessions:control",
    "sessions.connect": "sessions:control",
    "sessions.disconnect": "sessions:control",
    "sessions.logoff": "sessions:control",
    "sessions.reconnect": "sessions:control",
    "sessions.secure_attention": "sessions:control",
    "sessions.create": "sessions:admin",
    "sessions.update": "sessions:admin",
    "sessions.delete": "sessions:admin",
    "sessions.restart": "sessions:admin",
}


def test_session_actions_take_the_permissions_of_their_routes(settings: Settings) -> None:
    registry = build_registry(settings)
    assert {name: registry.get(name).permission for name in SESSION_ACTIONS} == SESSION_ACTIONS
    may_control = {role for role, (_, patterns) in BUILTIN_ROLES.items() if grants(patterns, "sessions:control")}
    assert may_control == {"admin", "operator"}
