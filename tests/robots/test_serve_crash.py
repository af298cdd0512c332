"""Robots outlive `robofleet serve`: kill -9 it while they run, start it again, and their runs are adopted."""

from __future__ import annotations

import sys
import time
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import StartServe, wait_until
from tests.robots.conftest import EXAMPLES, RobotsApi

pytestmark = pytest.mark.slow


def test_kill_9_of_serve_then_runs_are_adopted(store_url: str, start_serve: StartServe) -> None:
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    serve = start_serve(env=env)
    api = serve.api()
    counter = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.1"]
    for name, argv in (("long", counter), ("short", [*counter, "--until", "20"])):
        assert api.post("/api/v1/robots", json={"name": name, "argv": argv, "safe_stop_timeout": 5}).status_code == 201
    long_run = api.post("/api/v1/robots/long/start").json()
    short_run = api.post("/api/v1/robots/short/start").json()
    shim = psutil.Process(api.get(f"/api/v1/runs/{long_run['id']}").json()["pid"])
    serve.kill()
    time.sleep(2.5)  # meanwhile "short" finishes, with nobody watching
    assert shim.is_running() and shim.status() != psutil.STATUS_ZOMBIE

    serve.start(wait="/readyz")
    api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
    robots = RobotsApi(api, wait_seconds=20)
    assert api.get(f"/api/v1/runs/{long_run['id']}").json()["state"] == "running"
    finished = robots.wait_run(short_run["id"], "succeeded")
    assert finished["exit_code"] == 0
    newest = {"run_id": str(long_run["id"]), "source": "robot:long", "limit": 1}
    before = api.get("/api/v1/logs", params=newest).json()["items"][0]
    time.sleep(0.6)
    after = api.get("/api/v1/logs", params=newest).json()["items"][0]
    assert after["id"] > before["id"]  # its output still reaches the store, read on where it stopped
    assert api.post(f"/api/v1/runs/{long_run['id']}/stop").status_code == 200
    assert robots.wait_run(long_run["id"], "stopped")["exit_code"] == 143


def test_a_run_gets_its_own_token_for_the_sdk(start_serve: StartServe) -> None:
    serve = start_serve()
    api = serve.api()
    api.post("/api/v1/robots", json={"name": "talker", "argv": [sys.executable, str(EXAMPLES / "sdk_logger.py")]})
    run = api.post("/api/v1/robots/talker/start").json()
    assert RobotsApi(api, wait_seconds=20).wait_run(run["id"], "succeeded", "failed")["state"] == "succeeded"

    def sdk_records() -> list[dict[str, Any]]:
        records = api.get("/api/v1/logs", params={"run_id": str(run["id"]), "order": "asc"}).json()["items"]
        return [r for r in records if r["fields"].get("logger") == "sdk-demo"]

    sdk = wait_until(lambda: found if len(found := sdk_records()) >= 2 else None, 10, interval=0.1, message=sdk_records)
    assert sdk[0]["message"] == f"hello via the sdk from run {run['id']}" and sdk[0]["fields"]["invoice"] == 42
    assert sdk[1]["level"] == "WARNING" and sdk[0]["source"] == "robot:talker"
    tokens = api.get("/api/v1/tokens", params={"user": "robot-runs"}).json()["items"]
    assert [t["name"] for t in tokens] == [f"run {run['id']}"] and tokens[0]["revoked_at"]
    assert tokens[0]["scopes"] == ["logs:write", "queues:*"]
