"""A run's deadlines are stored: a safe stop still becomes a kill at its timeout, and a max runtime still stops the
run, when `robofleet serve` was killed -9 in between and started again."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import StartServe, wait_until

pytestmark = pytest.mark.slow
# Ignores SIGTERM: only the kill at its safe-stop deadline ends it.
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def serve_env(store_url: str) -> dict[str, str]:
    return {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}


def run_of(api: httpx.Client, run_id: int) -> dict[str, Any]:
    run: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
    return run


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_safe_stop_is_enforced_after_serve_was_killed(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = serve.api()
    robot = {"name": "stubborn", "argv": STUBBORN, "safe_stop_timeout": 3}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/stubborn/start").json()
    stopping = api.post(f"/api/v1/runs/{run['id']}/stop").json()
    assert stopping["state"] == "stopping" and stopping["stop_deadline"] is not None
    serve.kill()  # before the deadline: nothing in memory survives this

    wait_until(lambda: psutil.Process(run["pid"]).is_running(), message="the robot to outlive serve")
    serve.start(wait="/readyz")
    api = serve.api()
    ended = wait_until(
        lambda: (found := run_of(api, run["id"]))["state"] != "stopping" and found,
        timeout=20,
        message="the stop deadline to be enforced after the restart",
    )
    assert ended["state"] == "stopped", ended  # the stop was asked; the kill enforced it
    assert ended["stop_deadline"] is None and ended["ended_at"] is not None
    assert wait_until(lambda: gone(run["pid"]), message="the robot's process to be gone")

    def own_token() -> dict[str, Any]:
        tokens = api.get("/api/v1/tokens", params={"user": "robot-runs"}).json()["items"]
        own: list[dict[str, Any]] = [token for token in tokens if token["name"] == f"run {run['id']}"]
        assert len(own) == 1
        return own[0]

    wait_until(lambda: own_token()["revoked_at"], message="its token to be revoked at its end, after the restart")


def test_max_runtime_is_enforced_after_serve_was_killed(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = serve.api()
    robot = {"name": "long", "argv": SLEEPER, "max_runtime": 3, "safe_stop_timeout": 5}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/long/start").json()
    assert run["runtime_deadline"] is not None
    serve.kill()

    serve.start(wait="/readyz")
    api = serve.api()
    ended = wait_until(
        lambda: (found := run_of(api, run["id"]))["state"] not in ("running", "stopping") and found,
        timeout=20,
        message="the max runtime to be enforced after the restart",
    )
    assert ended["state"] == "stopped", ended
    stopping = [step for step in ended["transitions"] if step["state"] == "stopping"]
    assert stopping and stopping[0]["by"] == "max_runtime"
    assert wait_until(lambda: gone(run["pid"]), message="the robot's process to be gone")


def test_a_kill_asked_before_a_restart_still_ends_killed(start_serve: StartServe) -> None:
    serve = start_serve()
    api = serve.api()
    assert api.post("/api/v1/robots", json={"name": "victim", "argv": SLEEPER}).status_code == 201
    run = api.post("/api/v1/robots/victim/start").json()
    killed = api.post(f"/api/v1/runs/{run['id']}/kill")
    assert killed.status_code == 200
    ended = wait_until(lambda: (found := run_of(api, run["id"]))["state"] != "running" and found)
    assert ended["state"] == "killed" and ended["ended_at"] is not None


def test_a_planned_restart_survives_serve_being_killed(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = serve.api()
    failing = [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit(3)"]
    restart = {"policy": "on-failure", "backoff_seconds": 4, "give_up_after": 2}
    assert api.post("/api/v1/robots", json={"name": "flaky", "argv": failing, "restart": restart}).status_code == 201
    first = api.post("/api/v1/robots/flaky/start").json()
    wait_until(lambda: run_of(api, first["id"])["state"] == "failed", message="the first run to fail")
    serve.kill()  # the restart is planned 4 s on; nothing in memory survives this

    serve.start(wait="/readyz")
    api = serve.api()

    def runs() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = api.get("/api/v1/runs", params={"robot": "flaky"}).json()["items"]
        return items

    again = wait_until(lambda: len(runs()) >= 2 and runs(), timeout=20, message="the planned restart")
    assert again[0]["manual"] is False and again[0]["requested_by"] == "restart-policy"
    wait_until(lambda: len(runs()) == 2 and runs()[0]["state"] == "failed", message="the second run to fail")
    assert len(runs()) == 2  # given up after 2 failures: not started a third time, nor twice after the restart
