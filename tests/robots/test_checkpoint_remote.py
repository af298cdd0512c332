"""Cooperative pause on a remote `robofleet agent` over WebSocket: the same handshake, carried by its commands."""

from __future__ import annotations

import psutil
import pytest

from tests.conftest import StartAgent, StartServe, wait_until
from tests.robots.conftest import STEPWISE, RobotsApi

pytestmark = pytest.mark.slow


def test_a_remote_robot_pauses_at_its_checkpoint_or_is_frozen_when_late(
    start_serve: StartServe, start_agent: StartAgent
) -> None:
    serve = start_serve()
    api = serve.api()
    robots = RobotsApi(api, wait_seconds=20)
    start_agent(serve, "pc-02", online=api)
    for name, step, timeout in (("quick", "0.2", 10), ("late", "60", 1)):
        robot = {"name": name, "agent": "pc-02", "argv": [*STEPWISE, "--step", step], "safe_stop_timeout": timeout}
        assert api.post("/api/v1/robots", json=robot).status_code == 201
    quick = api.post("/api/v1/robots/quick/start").json()
    late = api.post("/api/v1/robots/late/start").json()
    robots.wait_output(quick, "step 2 done")
    robots.wait_output(late, "step 1 begins")
    for run in (quick, late):
        assert api.post(f"/api/v1/runs/{run['id']}/pause").json()["state"] == "running"

    held = robots.wait_run(quick["id"], "paused", seconds=10)
    assert held["transitions"][-1]["pause"] == "cooperative"
    assert psutil.Process(held["pid"]).status() != psutil.STATUS_STOPPED
    frozen = robots.wait_run(late["id"], "paused", seconds=10)
    assert frozen["transitions"][-1]["pause"] == "frozen" and "within 1 s" in frozen["transitions"][-1]["reason"]
    wait_until(lambda: psutil.Process(frozen["pid"]).status() == psutil.STATUS_STOPPED, 5, message="the freeze")

    assert api.post(f"/api/v1/runs/{quick['id']}/stop").json()["state"] == "stopping"
    stopped = robots.wait_run(quick["id"], "stopped", seconds=10)
    assert stopped["exit_code"] == 0
    wait_until(  # left after its step, by itself
        lambda: robots.output(quick)[-1].endswith("(stop requested)"),
        5,
        interval=0.1,
        message=lambda: f"the robot to leave by itself: {robots.output(quick)}",
    )
    assert api.post(f"/api/v1/runs/{late['id']}/kill").status_code == 200
    assert robots.wait_run(late["id"], "killed")["state"] == "killed"
