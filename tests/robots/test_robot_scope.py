"""A robot outside the caller's scope is as unknown as one that does not exist: every robots and runs route and
panel page answers 404 "no robot named …" / "no run …" (a 403 would tell that it exists); a robot in sight but
without the permission still answers 403. The Fleet page shows agents (host, OS user, OS) only with agents:read.
On a real `robofleet serve`, both stores."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest

from tests.conftest import ServeProcess, StartServe
from tests.robots.conftest import RobotsApi, serve_env, someone

pytestmark = pytest.mark.slow
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
ROBOT_ROUTES = [
    ("GET", ""),
    ("PATCH", ""),
    ("DELETE", ""),
    *[("POST", f"/{action}") for action in ("start", "restart", "pause", "resume", "stop", "kill")],
]
RUN_ROUTES = [("GET", ""), *[("POST", f"/{action}") for action in ("pause", "resume", "stop", "kill")]]


def as_user(serve: ServeProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def logged_in(serve: ServeProcess, username: str) -> httpx.Client:
    """A panel session of `username`. Its cookie is Secure on loopback (browsers send it over http there, httpx
    does not), so it is handed over as a plain one."""
    login = {"username": username, "password": f"{username}-password"}
    answer = httpx.post(f"{serve.url}/api/v1/auth/login", json=login, timeout=20)
    assert answer.is_success, answer.text
    return httpx.Client(base_url=serve.url, cookies=dict(answer.cookies), timeout=20)


def error_of(api: httpx.Client, method: str, path: str) -> tuple[int, dict[str, Any]]:
    body = {"description": "x"} if method == "PATCH" else None
    answer = api.request(method, path, json=body)
    return answer.status_code, answer.json()["error"]


def test_robots_outside_the_scope_are_not_found(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    admin = serve.api()
    robots = RobotsApi(admin)
    robots.make("billing-a", SLEEPER)
    robots.make("hr-payroll", SLEEPER, env={"API_TOKEN": "payroll-api-token-secret"})
    billing = as_user(serve, someone(admin, "billing-ops", ["robots:*", "logs:read"], robot_globs=("billing-*",)))
    viewer = as_user(serve, someone(admin, "watcher", ["robots:read"]))
    hr_run = robots.start("hr-payroll")

    for method, suffix in ROBOT_ROUTES:
        status, error = error_of(billing, method, f"/api/v1/robots/hr-payroll{suffix}")
        unknown_status, unknown = error_of(billing, method, f"/api/v1/robots/hr-nobody{suffix}")
        assert (status, error["code"]) == (unknown_status, unknown["code"]) == (404, "not_found"), (method, suffix)
        assert error["message"] == "no robot named 'hr-payroll'"
        assert unknown["message"] == "no robot named 'hr-nobody'"
    for method, suffix in RUN_ROUTES:
        status, error = error_of(billing, method, f"/api/v1/runs/{hr_run['id']}{suffix}")
        assert (status, error["message"]) == (404, f"no run {hr_run['id']}"), (method, suffix)
        unknown = {**error, "message": "no run 999999", "details": {"run": 999999}}
        assert error_of(billing, method, f"/api/v1/runs/999999{suffix}") == (404, unknown)
    assert billing.get("/api/v1/runs", params={"robot": "hr-payroll"}).json()["items"] == []
    # Within sight, a missing permission is still named.
    assert error_of(viewer, "POST", "/api/v1/robots/hr-payroll/start")[0] == 403
    assert error_of(viewer, "POST", f"/api/v1/runs/{hr_run['id']}/kill")[0] == 403
    # Run numbers past 64 bits are no run: refused, never a 500.
    assert admin.get("/api/v1/runs/9223372036854775808").status_code == 422
    assert admin.post("/api/v1/runs/9223372036854775808/kill").status_code == 422
    assert robots.run(hr_run["id"])["state"] == "running"

    # The panel: the robot's page is not found; the Fleet page has no agents without agents:read.
    panel = logged_in(serve, "billing-ops")
    assert panel.get("/panel/robots/hr-payroll").status_code == 404
    fleet = panel.get("/panel/fleet")
    assert fleet.status_code == 200 and 'id="agents"' not in fleet.text and 'data-agent="local"' not in fleet.text
    assert 'data-robot="billing-a"' in fleet.text and 'data-robot="hr-payroll"' not in fleet.text
    assert 'data-agent="local"' not in logged_in(serve, "watcher").get("/panel/fleet").text
    someone(admin, "seer", ["robots:read", "agents:read"])
    assert 'data-agent="local"' in logged_in(serve, "seer").get("/panel/fleet").text
    admin.post("/api/v1/robots/hr-payroll/kill")
