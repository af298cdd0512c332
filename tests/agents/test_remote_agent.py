"""`robofleet agent` in a process of its own, connected over WebSocket to a real `robofleet serve`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import StartAgent, StartServe, wait_until

pytestmark = pytest.mark.slow
COUNTER = [
    sys.executable,
    str(Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py"),
    "--every",
    "0.1",
]


def test_a_remote_agent_runs_robots_and_comes_back_after_a_restart(
    start_serve: StartServe, start_agent: StartAgent
) -> None:
    serve = start_serve()
    api = serve.api()
    start_agent(serve, "pc-01", online=api)
    listed = api.get("/api/v1/agents/pc-01").json()
    assert listed["os_user"] and listed["host"] and "process" in listed["capabilities"]
    assert api.get("/api/v1/agents/pc-01/system").json()["cpu_count"] >= 1

    api.post("/api/v1/robots", json={"name": "far", "agent": "pc-01", "argv": COUNTER, "safe_stop_timeout": 5})
    run = api.post("/api/v1/robots/far/start").json()
    assert run["state"] == "running" and run["agent"] == "pc-01"
    # The run's log holds its output (source robot:far) and the orchestrator's lines about it.
    output = {"run_id": str(run["id"]), "source": "robot:far", "limit": 1}
    wait_until(lambda: api.get("/api/v1/logs", params=output).json()["items"], 20, 0.1, "its first line")
    line = api.get("/api/v1/logs", params=output).json()["items"][0]
    assert line["source"] == "robot:far" and line["fields"]["agent"] == "pc-01"

    serve.stop()  # the orchestrator goes away; the agent and its robot carry on
    serve.start(wait="/readyz")
    api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
    wait_until(
        lambda: "pc-01" in [a["name"] for a in api.get("/api/v1/agents").json()["items"] if a["online"]],
        40,
        0.1,
        "the agent to come back",
    )
    assert api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running"
    stopped = api.post(f"/api/v1/runs/{run['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "stopped", 20, 0.1, "the stop")


def test_tokens_without_agents_connect_are_refused(start_serve: StartServe) -> None:
    serve = start_serve()
    url = serve.url.replace("http://", "ws://") + "/api/v1/agents/connect"

    async def attempt(token: str) -> int:
        try:
            async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.recv()
        except websockets.ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else 0
        return 0

    serve.cli("user", "create", "viewer1", "--role", "viewer", "--password-stdin", stdin="viewer-password\n")
    assert asyncio.run(attempt(serve.token("viewer1"))) == 4403
    assert asyncio.run(attempt("rf_not-a-token")) == 4401


def test_an_agent_that_vanishes_loses_its_runs_then_readopts_them(
    start_serve: StartServe, start_agent: StartAgent
) -> None:
    serve = start_serve(env={"ROBOFLEET_AGENTS__GRACE_SECONDS": "1"})
    api = serve.api()
    agent = start_agent(serve, "pc-02", online=api)
    api.post("/api/v1/robots", json={"name": "loyal", "agent": "pc-02", "argv": COUNTER})
    run = api.post("/api/v1/robots/loyal/start").json()
    agent.kill()  # the agent dies; its robot, in a session of its own, does not
    lost = wait_until(
        lambda: (r := api.get(f"/api/v1/runs/{run['id']}").json())["state"] == "lost" and r, 20, 0.1, "the run lost"
    )
    assert "pc-02" in lost["error"]
    assert api.post("/api/v1/robots/loyal/start").status_code == 409  # the agent is offline
    agent.start()
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running", 30, 0.1, "the readoption")
    assert api.post(f"/api/v1/runs/{run['id']}/kill").status_code == 200
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "killed", 20, 0.1, "the kill")
