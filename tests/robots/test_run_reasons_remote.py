"""A run on a remote `robofleet agent` explains itself too: the agent's shim finds why its robot failed and the
outcome crosses the WebSocket with it; a run lost with its agent says so; both logged at ERROR by the orchestrator."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest

from tests.conftest import StartAgent, StartServe, wait_until

pytestmark = pytest.mark.slow
CRASH = "import time\ndef fetch():\n    raise ConnectionError('portal down')\ntime.sleep(0.2)\nfetch()\n"


def ended(api: httpx.Client, run_id: int, *states: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
        return run if run["state"] in states else None

    return wait_until(reached, 30, 0.1, f"run {run_id} to be {' or '.join(states)}")


def test_a_remote_run_says_why_it_failed_and_a_lost_one_why_it_was_lost(
    start_serve: StartServe, start_agent: StartAgent
) -> None:
    serve = start_serve(env={"ROBOFLEET_AGENTS__GRACE_SECONDS": "1"})
    api = serve.api()
    agent = start_agent(serve, "pc-01", online=api)
    for name, argv in (
        ("far-crash", [sys.executable, "-c", CRASH]),
        ("far-sleep", [sys.executable, "-c", "import time; time.sleep(600)"]),
    ):
        assert api.post("/api/v1/robots", json={"name": name, "agent": "pc-01", "argv": argv}).status_code == 201

    crashed = ended(api, api.post("/api/v1/robots/far-crash/start").json()["id"], "failed", "succeeded")
    assert crashed["error"] == "exit 1: ConnectionError: portal down"

    sleeping = api.post("/api/v1/robots/far-sleep/start").json()
    agent.kill()  # its robot lives on, in a session of its own
    lost = ended(api, sleeping["id"], "lost")
    assert lost["error"] == "agent pc-01 was gone for more than 1 s"
    assert lost["transitions"][-1]["reason"] == lost["error"]

    def logged() -> list[str] | None:
        params = {"source": "orchestrator", "level": "ERROR", "run_id": str(sleeping["id"])}
        found = [item["message"] for item in api.get("/api/v1/logs", params=params).json()["items"]]
        return found or None

    lines = wait_until(logged, 10, 0.1, "the loss at ERROR")
    assert lines == [f"run {sleeping['id']} of far-sleep is lost: agent pc-01 was gone for more than 1 s (system)"]
    agent.start()  # back with its robot alive: running again, without the reason of its absence
    back = ended(api, sleeping["id"], "running")
    assert back["error"] is None
    assert api.post(f"/api/v1/runs/{sleeping['id']}/kill").status_code == 200
    assert ended(api, sleeping["id"], "killed")["error"].startswith("killed by an API token of admin (")
