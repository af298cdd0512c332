"""Every route declares the permission it needs, and refuses a caller without it."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient

from robofleet.web.app import all_routers
from robofleet.web.security import Public, Require
from tests.conftest import MakeUser, bearer

# Routes anyone may call, by design.
PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/panel"),
    ("GET", "/panel/"),
    ("GET", "/panel/login"),
    ("POST", "/panel/login"),
    ("GET", "/api/docs"),
}


def declared(route: APIRoute) -> Require | Public | None:
    guards = [dep.call for dep in route.dependant.dependencies if isinstance(dep.call, Require | Public)]
    assert len(guards) <= 1, f"{route.path} declares more than one guard"
    return guards[0] if guards else None


def routes(client: TestClient) -> list[tuple[str, str, Require | Public | None]]:
    found = []
    for router in all_routers():
        for route in router.routes:
            if isinstance(route, APIWebSocketRoute):  # the agents' socket checks its token itself (tests/agents)
                continue
            assert isinstance(route, APIRoute), route
            for method in sorted(route.methods):
                found.append((method, route.path, declared(route)))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_declares_a_guard(client: TestClient) -> None:
    table = routes(client)
    assert len(table) > 30
    undeclared = [(method, path) for method, path, guard in table if guard is None]
    assert not undeclared, f"routes without a declared permission: {undeclared}"
    public = {(method, path) for method, path, guard in table if isinstance(guard, Public)}
    assert public == PUBLIC_ROUTES


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_each_route_refuses_a_caller_without_its_permission(client: TestClient, make_user: MakeUser) -> None:
    nobody = make_user("nobody", [])
    checked = 0
    for method, path, guard in routes(client):
        if not isinstance(guard, Require):
            continue
        url = concrete(path)
        anonymous = client.request(method, url, follow_redirects=False)
        if path.startswith("/panel"):
            assert anonymous.status_code == 303 and "/panel/login" in anonymous.headers["location"], (method, path)
        else:
            assert anonymous.status_code == 401, (method, path, anonymous.text)
        if guard.permission is None:
            continue
        refused = client.request(method, url, headers=bearer(nobody), follow_redirects=False)
        assert refused.status_code == 403, (method, path, refused.status_code)
        if not path.startswith("/panel"):
            assert refused.json()["error"]["details"]["permission"] == guard.permission
        checked += 1
    assert checked > 20


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_errors_have_the_documented_shape(client: TestClient, admin_token: str) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = client.put("/api/v1/users", headers=bearer(admin_token))
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    bad_limit = client.get("/api/v1/users", headers=bearer(admin_token), params={"limit": 100000})
    assert bad_limit.status_code == 422 and bad_limit.json()["error"]["details"][0]["field"] == "query.limit"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_openapi_metrics_and_settings(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/users" in spec["paths"] and "/api/v1/settings" in spec["paths"]
    assert client.get("/metrics").status_code == 401
    metrics = client.get("/metrics", headers=bearer(admin_token))
    assert metrics.status_code == 200 and "robofleet_http_requests_total" in metrics.text
    client.get("/api/v1/users/root-admin", headers=bearer(admin_token))
    metrics = client.get("/metrics", headers=bearer(admin_token))
    assert 'route="/api/v1/users/{username}",status="200"' in metrics.text
    settings = client.get("/api/v1/settings", headers=bearer(admin_token)).json()
    assert settings["server"]["port"] == 8080
    viewer = make_user("viewer1", ["viewer"])
    assert client.get("/api/v1/settings", headers=bearer(viewer)).status_code == 403


# Routes that act on what a session shows or is connected to: sessions:control, as input is (defining and restarting a
# session stay sessions:admin's).
SESSION_CONTROL_ROUTES = {
    ("POST", f"/api/v1/sessions/{{name}}/{operation}")
    for operation in (
        "click",
        "type",
        "key",
        "scroll",
        "connect",
        "disconnect",
        "logoff",
        "reconnect",
        "secure-attention",
    )
}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_session_control_routes_take_sessions_control(client: TestClient) -> None:
    guards = {(method, path): guard for method, path, guard in routes(client) if path.startswith("/api/v1/sessions")}
    controlled = {
        key for key, guard in guards.items() if isinstance(guard, Require) and guard.permission == "sessions:control"
    }
    assert controlled == SESSION_CONTROL_ROUTES
    restart = guards[("POST", "/api/v1/sessions/{name}/restart")]
    assert isinstance(restart, Require) and restart.permission == "sessions:admin"
