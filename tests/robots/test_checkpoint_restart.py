"""Pauses outlive `robofleet serve`: kill -9 it while runs are paused, or on their way to a checkpoint, start it
again, and each run is recorded as its processes really are, and resumes."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.conftest import ServeProcess
from tests.robots.test_serve_crash import wait_run

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"
STEPWISE = [sys.executable, str(EXAMPLES / "stepwise.py")]


def output(api: httpx.Client, run: dict[str, Any]) -> list[str]:
    params = {"run_id": str(run["id"]), "source": f"robot:{run['robot']}", "order": "asc", "limit": 500}
    return [item["message"] for item in api.get("/api/v1/logs", params=params).json()["items"]]


def wait_output(api: httpx.Client, run: dict[str, Any], line: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while line not in (lines := output(api, run)):
        assert time.monotonic() < deadline, lines
        time.sleep(0.1)


def test_kill_9_of_serve_keeps_pauses_and_finishes_one_in_flight(tmp_path: Path, store_url: str) -> None:
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    serve = ServeProcess(tmp_path, env=env).start(wait="/readyz")
    try:
        api = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {serve.token()}"}, timeout=20)
        counter = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.1"]
        for name, argv in (
            ("held", [*STEPWISE, "--step", "0.2"]),
            ("on-its-way", [*STEPWISE, "--step", "8"]),
            ("frozen", counter),
        ):
            made = api.post("/api/v1/robots", json={"name": name, "argv": argv, "safe_stop_timeout": 30})
            assert made.status_code == 201, made.text
        runs = {name: api.post(f"/api/v1/robots/{name}/start").json() for name in ("held", "on-its-way", "frozen")}
        wait_output(api, runs["held"], "step 2 done")
        wait_output(api, runs["on-its-way"], "step 1 begins")
        wait_output(api, runs["frozen"], "count 2")
        for run in runs.values():
            assert api.post(f"/api/v1/runs/{run['id']}/pause").status_code == 200
        assert wait_run(api, runs["held"]["id"], "paused")["transitions"][-1]["pause"] == "cooperative"
        assert api.get(f"/api/v1/runs/{runs['on-its-way']['id']}").json()["pause_asked_at"]
        serve.kill()

        serve.start(wait="/readyz")
        api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
        held = api.get(f"/api/v1/runs/{runs['held']['id']}").json()
        assert held["state"] == "paused" and psutil.Process(held["pid"]).status() != psutil.STATUS_STOPPED
        frozen = api.get(f"/api/v1/runs/{runs['frozen']['id']}").json()
        assert frozen["state"] == "paused" and frozen["transitions"][-1]["pause"] == "frozen"
        # The one on its way gets to its checkpoint after its step, watched by the new serve.
        assert api.get(f"/api/v1/runs/{runs['on-its-way']['id']}").json()["state"] == "running"
        arrived = wait_run(api, runs["on-its-way"]["id"], "paused", seconds=20)
        assert arrived["transitions"][-1]["pause"] == "cooperative"
        assert psutil.Process(arrived["pid"]).status() != psutil.STATUS_STOPPED

        lines = output(api, runs["held"])
        for run in runs.values():
            assert api.post(f"/api/v1/runs/{run['id']}/resume").json()["state"] == "running"
        wait_output(api, runs["held"], f"step {int(lines[-1].split()[1]) + 2} done")
        wait_output(api, runs["on-its-way"], "step 2 begins")
        for run in runs.values():
            assert api.post(f"/api/v1/runs/{run['id']}/kill").status_code == 200
            assert wait_run(api, run["id"], "killed")["state"] == "killed"
    finally:
        serve.stop()
