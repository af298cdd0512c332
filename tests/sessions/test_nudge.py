"""A session that changes on its agent shows in the API within a moment, not at the next periodic sync: the agent's
keeper nudges the orchestrator (the embedded agent through the hub, a remote agent by a `sessions_changed` message
over its connection), which syncs at once. The periodic sync here is 60 s, so only the nudge can explain a change
seen within seconds: a display killed, its restart by the watchdog."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from tests.conftest import StartAgent, StartServe, wait_until
from tests.sessions.conftest import session_state

pytestmark = pytest.mark.slow
SLOW_SYNC = {"ROBOFLEET_SESSIONS__CHECK_SECONDS": "60"}


def restarted_within(api: httpx.Client, name: str, seconds: float) -> float:
    """Kill the session's X server and time until the API says it is healthy again after a restart."""
    healthy = wait_until(lambda: session_state(api, name, "healthy"), 30)
    os.kill(int(healthy["pid"]), signal.SIGKILL)
    began = time.monotonic()
    wait_until(
        lambda: (
            (now := api.get(f"/api/v1/sessions/{name}").json())["state"] == "healthy"
            and now["restarts"] > healthy["restarts"]
        ),
        seconds,
        interval=0.1,
        message=lambda: api.get(f"/api/v1/sessions/{name}").text,
    )
    return time.monotonic() - began


def test_the_embedded_agent_nudges_serve(start_serve: StartServe) -> None:
    serve = start_serve(env=SLOW_SYNC)
    with serve.api() as api:
        assert api.post("/api/v1/sessions", json={"name": "nudged", "width": 640, "height": 480}).status_code == 201
        assert restarted_within(api, "nudged", 15) < 15


def test_a_remote_agent_nudges_serve(start_serve: StartServe, start_agent: StartAgent) -> None:
    serve = start_serve(env=SLOW_SYNC)
    with serve.api() as api:
        start_agent(serve, "pc-nudge", online=api)
        made = api.post("/api/v1/sessions", json={"name": "far", "agent": "pc-nudge", "width": 640, "height": 480})
        assert made.status_code == 201, made.text
        assert restarted_within(api, "far", 15) < 15
