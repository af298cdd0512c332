"""`robofleet agent` in a process of its own, connected over WebSocket to a real `robofleet serve`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import ServeProcess

pytestmark = pytest.mark.slow
COUNTER = [
    sys.executable,
    str(Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py"),
    "--every",
    "0.1",
]


def until(check: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_remote_agent_runs_robots_and_comes_back_after_a_restart(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path / "server").start(wait="/readyz")
    agent = None
    try:
        agent_token = serve.agent_token("pc-01")
        api = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {serve.token()}"}, timeout=20)
        agent = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "robofleet",
                "agent",
                "--server",
                serve.url,
                "--token",
                agent_token,
                "--name",
                "pc-01",
                "--state-dir",
                str(tmp_path / "agent"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "agent.log").open("w"),
        )
        until(lambda: "pc-01" in [a["name"] for a in api.get("/api/v1/agents").json()["items"]])
        listed = api.get("/api/v1/agents/pc-01").json()
        assert listed["os_user"] and listed["host"] and "process" in listed["capabilities"]
        assert api.get("/api/v1/agents/pc-01/system").json()["cpu_count"] >= 1

        api.post("/api/v1/robots", json={"name": "far", "agent": "pc-01", "argv": COUNTER, "safe_stop_timeout": 5})
        run = api.post("/api/v1/robots/far/start").json()
        assert run["state"] == "running" and run["agent"] == "pc-01"
        # The run's log holds its output (source robot:far) and the orchestrator's lines about it.
        output = {"run_id": str(run["id"]), "source": "robot:far", "limit": 1}
        until(lambda: api.get("/api/v1/logs", params=output).json()["items"])
        line = api.get("/api/v1/logs", params=output).json()["items"][0]
        assert line["source"] == "robot:far" and line["fields"]["agent"] == "pc-01"

        serve.stop()  # the orchestrator goes away; the agent and its robot carry on
        serve.start(wait="/readyz")
        api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
        until(lambda: "pc-01" in [a["name"] for a in api.get("/api/v1/agents").json()["items"]], 40)
        assert api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running"
        stopped = api.post(f"/api/v1/runs/{run['id']}/stop")
        assert stopped.status_code == 200, stopped.text
        until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "stopped")
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        serve.stop()


def test_tokens_without_agents_connect_are_refused(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path).start(wait="/readyz")
    try:
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
    finally:
        serve.stop()


def test_an_agent_that_vanishes_loses_its_runs_then_readopts_them(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path / "server", env={"ROBOFLEET_AGENTS__GRACE_SECONDS": "1"}).start(wait="/readyz")
    agents: list[subprocess.Popen[bytes]] = []

    def start_agent() -> None:
        agents.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "robofleet",
                    "agent",
                    "--server",
                    serve.url,
                    "--token",
                    agent_token,
                    "--name",
                    "pc-02",
                    "--state-dir",
                    str(tmp_path / "agent"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    try:
        agent_token = serve.agent_token("pc-02")
        api = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {serve.token()}"}, timeout=20)
        start_agent()
        until(lambda: "pc-02" in [a["name"] for a in api.get("/api/v1/agents").json()["items"]])
        api.post("/api/v1/robots", json={"name": "loyal", "agent": "pc-02", "argv": COUNTER})
        run = api.post("/api/v1/robots/loyal/start").json()
        agents[0].kill()  # the agent dies; its robot, in a session of its own, does not
        agents[0].wait(10)
        lost = until(lambda: (r := api.get(f"/api/v1/runs/{run['id']}").json())["state"] == "lost" and r)
        assert "pc-02" in lost["error"]
        assert api.post("/api/v1/robots/loyal/start").status_code == 409  # the agent is offline
        start_agent()
        until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running", 30)
        assert api.post(f"/api/v1/runs/{run['id']}/kill").status_code == 200
        until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "killed")
    finally:
        for process in agents:
            process.terminate()
            process.wait(10)
        serve.stop()
