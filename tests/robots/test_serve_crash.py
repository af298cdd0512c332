"""Robots outlive `robofleet serve`: kill -9 it while they run, start it again, and their runs are adopted."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import ServeProcess

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"


def wait_run(api: httpx.Client, run_id: int, *states: str, seconds: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        run: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
        if run["state"] in states:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['state']}"
        time.sleep(0.1)


def test_kill_9_of_serve_then_runs_are_adopted(tmp_path: Path, store_url: str) -> None:
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    serve = ServeProcess(tmp_path, env=env).start(wait="/readyz")
    try:
        api = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {serve.token()}"}, timeout=20)
        counter = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.1"]
        for name, argv in (("long", counter), ("short", [*counter, "--until", "20"])):
            assert (
                api.post("/api/v1/robots", json={"name": name, "argv": argv, "safe_stop_timeout": 5}).status_code == 201
            )
        long_run = api.post("/api/v1/robots/long/start").json()
        short_run = api.post("/api/v1/robots/short/start").json()
        shim = psutil.Process(api.get(f"/api/v1/runs/{long_run['id']}").json()["pid"])
        serve.kill()
        time.sleep(2.5)  # meanwhile "short" finishes, with nobody watching
        assert shim.is_running() and shim.status() != psutil.STATUS_ZOMBIE

        serve.start(wait="/readyz")
        api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
        assert api.get(f"/api/v1/runs/{long_run['id']}").json()["state"] == "running"
        finished = wait_run(api, short_run["id"], "succeeded")
        assert finished["exit_code"] == 0
        before = api.get(
            "/api/v1/logs", params={"run_id": str(long_run["id"]), "source": "robot:long", "limit": 1}
        ).json()["items"][0]
        time.sleep(0.6)
        after = api.get(
            "/api/v1/logs", params={"run_id": str(long_run["id"]), "source": "robot:long", "limit": 1}
        ).json()["items"][0]
        assert after["id"] > before["id"]  # its output still reaches the store, read on where it stopped
        assert api.post(f"/api/v1/runs/{long_run['id']}/stop").status_code == 200
        assert wait_run(api, long_run["id"], "stopped")["exit_code"] == 143
    finally:
        serve.stop()


def test_a_run_gets_its_own_token_for_the_sdk(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path).start(wait="/readyz")
    try:
        api = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {serve.token()}"}, timeout=20)
        api.post("/api/v1/robots", json={"name": "talker", "argv": [sys.executable, str(EXAMPLES / "sdk_logger.py")]})
        run = api.post("/api/v1/robots/talker/start").json()
        assert wait_run(api, run["id"], "succeeded", "failed")["state"] == "succeeded"
        deadline = time.monotonic() + 10
        while True:
            records = api.get("/api/v1/logs", params={"run_id": str(run["id"]), "order": "asc"}).json()["items"]
            sdk = [r for r in records if r["fields"].get("logger") == "sdk-demo"]
            if len(sdk) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert sdk[0]["message"] == f"hello via the sdk from run {run['id']}" and sdk[0]["fields"]["invoice"] == 42
        assert sdk[1]["level"] == "WARNING" and sdk[0]["source"] == "robot:talker"
        tokens = api.get("/api/v1/tokens", params={"user": "robot-runs"}).json()["items"]
        assert [t["name"] for t in tokens] == [f"run {run['id']}"] and tokens[0]["revoked_at"]
        assert tokens[0]["scopes"] == ["logs:write", "queues:*"]
    finally:
        serve.stop()
