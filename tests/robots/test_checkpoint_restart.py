"""Pauses outlive `robofleet serve`: kill -9 it while runs are paused, or on their way to a checkpoint, start it
again, and each run is recorded as its processes really are, and resumes."""

from __future__ import annotations

import sys

import httpx
import psutil
import pytest

from tests.conftest import StartServe
from tests.robots.conftest import EXAMPLES, STEPWISE, RobotsApi

pytestmark = pytest.mark.slow


def test_kill_9_of_serve_keeps_pauses_and_finishes_one_in_flight(store_url: str, start_serve: StartServe) -> None:
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    serve = start_serve(env=env)
    api = serve.api()
    robots = RobotsApi(api, wait_seconds=20)
    counter = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.1"]
    for name, argv in (
        ("held", [*STEPWISE, "--step", "0.2"]),
        # Its step outlasts the restart below, however loaded the machine (three test workers on two cores).
        ("on-its-way", [*STEPWISE, "--step", "20"]),
        ("frozen", counter),
    ):
        made = api.post("/api/v1/robots", json={"name": name, "argv": argv, "safe_stop_timeout": 30})
        assert made.status_code == 201, made.text
    runs = {name: api.post(f"/api/v1/robots/{name}/start").json() for name in ("held", "on-its-way", "frozen")}
    robots.wait_output(runs["held"], "step 2 done")
    robots.wait_output(runs["on-its-way"], "step 1 begins")
    robots.wait_output(runs["frozen"], "count 2")
    for run in runs.values():
        assert api.post(f"/api/v1/runs/{run['id']}/pause").status_code == 200
    assert robots.wait_run(runs["held"]["id"], "paused")["transitions"][-1]["pause"] == "cooperative"
    assert api.get(f"/api/v1/runs/{runs['on-its-way']['id']}").json()["pause_asked_at"]
    serve.kill()

    serve.start(wait="/readyz")
    api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
    robots = RobotsApi(api, wait_seconds=20)
    held = api.get(f"/api/v1/runs/{runs['held']['id']}").json()
    assert held["state"] == "paused" and psutil.Process(held["pid"]).status() != psutil.STATUS_STOPPED
    frozen = api.get(f"/api/v1/runs/{runs['frozen']['id']}").json()
    assert frozen["state"] == "paused" and frozen["transitions"][-1]["pause"] == "frozen"
    # The one on its way gets to its checkpoint after its step, watched by the new serve.
    assert api.get(f"/api/v1/runs/{runs['on-its-way']['id']}").json()["state"] == "running"
    arrived = robots.wait_run(runs["on-its-way"]["id"], "paused", seconds=40)
    assert arrived["transitions"][-1]["pause"] == "cooperative"
    assert psutil.Process(arrived["pid"]).status() != psutil.STATUS_STOPPED

    lines = robots.output(runs["held"])
    for run in runs.values():
        assert api.post(f"/api/v1/runs/{run['id']}/resume").json()["state"] == "running"
    robots.wait_output(runs["held"], f"step {int(lines[-1].split()[1]) + 2} done")
    robots.wait_output(runs["on-its-way"], "step 2 begins")
    for run in runs.values():
        assert api.post(f"/api/v1/runs/{run['id']}/kill").status_code == 200
        assert robots.wait_run(run["id"], "killed")["state"] == "killed"
