"""A `kill -9` of `serve` loses neither a session nor the robot drawing in it: its Xvfb, started by the embedded
local agent in a process session of its own, lives on like the robot; the next serve adopts the same display (same
X server, no second one), finds the run still running, and the screen still shows the robot's window."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image

from tests.conftest import StartServe, wait_until
from tests.sessions.conftest import TK_WINDOW, blue_share, session_state

pytestmark = pytest.mark.slow


def xvfb_pids() -> set[int]:
    return {process.pid for process in psutil.process_iter(["name"]) if process.info["name"] == "Xvfb"}


def test_a_kill_9_of_serve_keeps_the_display_and_its_robot_and_the_next_serve_adopts_both(
    start_serve: StartServe, tmp_path: Path
) -> None:
    serve = start_serve(env={"ROBOFLEET_SESSIONS__CHECK_SECONDS": "0.5"})
    before = xvfb_pids()
    with serve.api() as api:
        assert api.post("/api/v1/sessions", json={"name": "kept", "width": 640, "height": 480}).status_code == 201
        healthy: dict[str, Any] = wait_until(lambda: session_state(api, "kept", "healthy"), 20)
        robot = {
            "name": "painter",
            "argv": [sys.executable, str(TK_WINDOW)],
            "env": {"TK_WINDOW_EVENTS": str(tmp_path / "events.jsonl")},
            "session": "kept",
        }
        assert api.post("/api/v1/robots", json=robot).status_code == 201
        run = api.post("/api/v1/robots/painter/start").json()
    [xvfb] = xvfb_pids() - before
    assert healthy["pid"] == xvfb

    serve.kill()
    assert psutil.pid_exists(xvfb) and psutil.Process(run["pid"]).is_running()
    serve.start()

    with serve.api() as api:
        again: dict[str, Any] = wait_until(lambda: session_state(api, "kept", "healthy"), 20)
        assert again["pid"] == xvfb and again["actual_display"] == healthy["actual_display"]
        assert xvfb_pids() - before == {xvfb}, "the next serve started a second display"
        assert api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running"

        def drawn() -> bool:
            shot = api.get("/api/v1/sessions/kept/screenshot")
            return shot.status_code == 200 and blue_share(Image.open(io.BytesIO(shot.content))) > 0.5

        wait_until(drawn, 20, interval=0.5)
