"""Cooperative pause on a remote `robofleet agent` over WebSocket: the same handshake, carried by its commands."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ServeProcess
from tests.robots.test_checkpoint_restart import STEPWISE, output, wait_output
from tests.robots.test_serve_crash import wait_run

pytestmark = pytest.mark.slow


def test_a_remote_robot_pauses_at_its_checkpoint_or_is_frozen_when_late(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path / "server").start(wait="/readyz")
    agent = None
    try:
        agent_token = serve.agent_token("pc-02")
        api = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {serve.token()}"}, timeout=20)
        command = ["robofleet", "agent", "--server", serve.url, "--token", agent_token, "--name", "pc-02"]
        agent = subprocess.Popen(
            [sys.executable, "-m", *command, "--state-dir", str(tmp_path / "agent")],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "agent.log").open("w"),
        )
        deadline = time.monotonic() + 20
        while "pc-02" not in [a["name"] for a in api.get("/api/v1/agents").json()["items"]]:
            assert time.monotonic() < deadline, (tmp_path / "agent.log").read_text()
            time.sleep(0.1)
        for name, step, timeout in (("quick", "0.2", 10), ("late", "60", 1)):
            robot = {"name": name, "agent": "pc-02", "argv": [*STEPWISE, "--step", step], "safe_stop_timeout": timeout}
            assert api.post("/api/v1/robots", json=robot).status_code == 201
        quick = api.post("/api/v1/robots/quick/start").json()
        late = api.post("/api/v1/robots/late/start").json()
        wait_output(api, quick, "step 2 done")
        wait_output(api, late, "step 1 begins")
        for run in (quick, late):
            assert api.post(f"/api/v1/runs/{run['id']}/pause").json()["state"] == "running"

        held = wait_run(api, quick["id"], "paused", seconds=10)
        assert held["transitions"][-1]["pause"] == "cooperative"
        assert psutil.Process(held["pid"]).status() != psutil.STATUS_STOPPED
        frozen = wait_run(api, late["id"], "paused", seconds=10)
        assert frozen["transitions"][-1]["pause"] == "frozen" and "within 1 s" in frozen["transitions"][-1]["reason"]
        deadline = time.monotonic() + 5
        while psutil.Process(frozen["pid"]).status() != psutil.STATUS_STOPPED:
            assert time.monotonic() < deadline
            time.sleep(0.05)

        assert api.post(f"/api/v1/runs/{quick['id']}/stop").json()["state"] == "stopping"
        stopped = wait_run(api, quick["id"], "stopped", seconds=10)
        assert stopped["exit_code"] == 0
        deadline = time.monotonic() + 5
        while not output(api, quick)[-1].endswith("(stop requested)"):  # left after its step, by itself
            assert time.monotonic() < deadline, output(api, quick)
            time.sleep(0.1)
        assert api.post(f"/api/v1/runs/{late['id']}/kill").status_code == 200
        assert wait_run(api, late["id"], "killed")["state"] == "killed"
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        serve.stop()
