"""An agent's name belongs to the user whose tokens are bound to it: no other token connects as it, a live
connection is displaced only by its own user, and what an agent says about runs counts only for its own runs.

Impostors here are raw WebSocket clients, as an attacker would write them, against a real `robofleet serve`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import websockets

from robofleet.agents.hub import AgentHub, HubListeners
from robofleet.agents.remote import handle, own_runs
from robofleet.logs.ingest import Row
from tests.conftest import RunCli, ServeProcess, StartAgent, StartServe, wait_until

pytestmark = pytest.mark.slow
COUNTER = [sys.executable, str(Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py")]


def hello(name: str) -> dict[str, Any]:
    return {"type": "hello", "name": name, "instance": "impostor", "runs": [], "results": []}


def url_of(serve: ServeProcess) -> str:
    return serve.url.replace("http://", "ws://") + "/api/v1/agents/connect"


async def refusal(serve: ServeProcess, token: str, first: object) -> tuple[int, str]:
    """The close code and reason the server answers `first` (a hello, or any frame) with; fails if welcomed."""
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url_of(serve), additional_headers=headers) as ws:
        await ws.send(first if isinstance(first, str | bytes) else json.dumps(first))
        try:
            answer = await asyncio.wait_for(ws.recv(), 10)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return exc.rcvd.code, exc.rcvd.reason
    raise AssertionError(f"welcomed: {answer!r}")


def refused(serve: ServeProcess, token: str, first: object) -> tuple[int, str]:
    return asyncio.run(refusal(serve, token, first))


def test_no_other_token_connects_as_a_connected_agent(start_serve: StartServe, start_agent: StartAgent) -> None:
    serve = start_serve()
    api = serve.api()
    real = start_agent(serve, "pc-01", online=api)
    evil = serve.agent_token("pc-evil")  # a second agent user, with a token bound to a name of its own

    # Its own token cannot name pc-01, and the name cannot be claimed for it.
    code, reason = refused(serve, evil, hello("pc-01"))
    assert code == 4403 and reason == "this token connects as the agent pc-evil only"
    claim = api.post("/api/v1/tokens", json={"user": "pc-evil", "agent": "pc-01"})
    assert claim.status_code == 409, claim.text
    # Tokens bound to no agent name are refused whoever holds them, with how to make a bound one.
    for unbound in (serve.token("pc-evil"), serve.token("admin")):
        code, reason = refused(serve, unbound, hello("pc-01"))
        assert code == 4403 and "robofleet token create --user <agent user> --agent <name>" in reason

    denied = api.get("/api/v1/audit", params={"action": "agent.connect", "outcome": "denied"}).json()["items"]
    assert denied and all(record["target"] == "pc-01" for record in denied)
    assert any(record["actor"].startswith("pc-evil") for record in denied)
    listed = api.get("/api/v1/agents/pc-01").json()
    assert listed["principal"] == "pc-01"
    shell = api.post("/api/v1/agents/pc-01/shell", json={"command": "echo from the real pc-01"})
    assert shell.status_code == 200 and shell.json()["stdout"] == "from the real pc-01\n", shell.text
    assert "replaced this one" not in real.output() and "refused" not in real.output()


def test_a_revoked_agent_token_ends_the_live_connection(start_serve: StartServe, start_agent: StartAgent) -> None:
    serve = start_serve(env={"ROBOFLEET_AGENTS__HEARTBEAT_SECONDS": "1"})
    api = serve.api()
    token = serve.agent_token("pc-gone")
    agent = start_agent(serve, "pc-gone", token=token, online=api)
    token_id = api.get("/api/v1/tokens", params={"user": "pc-gone"}).json()["items"][0]["id"]
    assert api.delete(f"/api/v1/tokens/{token_id}").status_code == 200
    # No command reaches it any more (a command carries a robot's secrets), and it is gone from the list.
    shell = api.post("/api/v1/agents/pc-gone/shell", json={"command": "echo still here"})
    assert shell.status_code == 409, shell.text
    wait_until(
        lambda: all(
            a["name"] != "pc-gone" or not a.get("online", True) for a in api.get("/api/v1/agents").json()["items"]
        ),
        10,
        message="the revoked agent to be disconnected",
    )
    wait_until(lambda: "revoked" in agent.output(), 10, message="the agent to be told why")


def test_a_live_agent_is_replaced_by_its_own_user_only(start_serve: StartServe) -> None:
    serve = start_serve()
    api = serve.api()
    first, again = serve.agent_token("pc-07"), serve.token("pc-07", agent="pc-07")
    other = serve.agent_user("pc-07-new")

    async def scenario() -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {first}"}
        async with websockets.connect(url_of(serve), additional_headers=headers) as old:
            await old.send(json.dumps(hello("pc-07")))
            assert json.loads(await old.recv())["type"] == "welcome"
            # The same user again (an agent that started afresh) takes the name over.
            async with websockets.connect(
                url_of(serve), additional_headers={"Authorization": f"Bearer {again}"}
            ) as new:
                await new.send(json.dumps(hello("pc-07")))
                assert json.loads(await new.recv())["type"] == "welcome"
                await old.send(json.dumps({"type": "heartbeat", "stats": {}}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(old.recv(), 10)
                assert closed.value.rcvd is not None and "replaced" in closed.value.rcvd.reason
                # Its tokens revoked, the name can be given to another user; the live connection still holds it.
                for token in api.get("/api/v1/tokens", params={"user": "pc-07"}).json()["items"]:
                    assert api.delete(f"/api/v1/tokens/{token['id']}").status_code == 200
                taker = api.post("/api/v1/tokens", json={"user": other, "agent": "pc-07"})
                assert taker.status_code == 201, taker.text
                return await refusal(serve, taker.json()["token"], hello("pc-07"))

    code, reason = asyncio.run(scenario())
    assert code == 4403 and reason == "the agent pc-07 is connected as another user"


def test_the_agent_token_stays_off_the_command_line_and_out_of_its_robots(
    start_serve: StartServe, start_agent: StartAgent
) -> None:
    serve = start_serve()
    api = serve.api()
    by_file = start_agent(serve, "pc-file", online=api)
    by_env = start_agent(serve, "pc-env", online=api, token_in_env=True)
    for agent in (by_file, by_env):
        assert agent.process is not None
        assert agent.token not in " ".join(psutil.Process(agent.process.pid).cmdline())

    probe = "import os; print('agent token:', os.environ.get('ROBOFLEET_AGENT_TOKEN', 'absent'))"
    robot = {"name": "probe", "agent": "pc-env", "argv": [sys.executable, "-c", probe]}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/probe/start").json()
    params = {"run_id": str(run["id"]), "source": "robot:probe"}
    lines = wait_until(lambda: api.get("/api/v1/logs", params=params).json()["items"], 20, 0.1, "the probe's line")
    assert [line["message"] for line in lines] == ["agent token: absent"]


def test_the_agent_command_says_how_to_give_a_token(run_cli: RunCli, tmp_path: Path) -> None:
    server = ["agent", "--server", "http://127.0.0.1:9"]
    missing = run_cli(*server)
    assert missing.returncode == 1 and "--token-file PATH or set ROBOFLEET_AGENT_TOKEN" in missing.stderr
    unreadable = run_cli(*server, "--token-file", str(tmp_path / "nowhere"))
    assert unreadable.returncode == 1 and "cannot read the token file" in unreadable.stderr
    both = run_cli(*server, "--token-file", str(tmp_path / "nowhere"), "--token", "rf_x")
    assert both.returncode == 1 and "one way" in both.stderr
    open_file = tmp_path / "pc.token"
    open_file.write_text("rf_not-a-real-token\n")
    open_file.chmod(0o644)
    refused = run_cli(*server, "--token-file", str(open_file))
    assert refused.returncode == 1 and "chmod 600" in refused.stderr and "rf_not" not in refused.stderr


def test_an_agent_cannot_end_or_speak_for_another_agents_run(start_serve: StartServe) -> None:
    serve = start_serve()
    api = serve.api()
    robot = {"name": "payroll", "agent": "local", "argv": [*COUNTER, "--every", "0.1"], "max_concurrent": 1}
    assert api.post("/api/v1/robots", json=robot).status_code == 201, api.get("/api/v1/robots").text
    run = api.post("/api/v1/robots/payroll/start").json()
    assert run["state"] == "running", run
    evil = serve.agent_token("pc-evil")
    line = {"run_id": str(run["id"]), "stream": "stdout", "label": "payroll", "line": "SPOOFED by pc-evil"}

    async def impostor() -> list[dict[str, Any]]:
        async with websockets.connect(url_of(serve), additional_headers={"Authorization": f"Bearer {evil}"}) as ws:
            await ws.send(json.dumps({**hello("pc-evil"), "runs": [{"run_id": str(run["id"]), "alive": True}]}))
            assert json.loads(await ws.recv())["type"] == "welcome"
            await ws.send(
                json.dumps({"type": "exited", "seq": 1, "run_id": str(run["id"]), "outcome": {"exit_code": 1}})
            )
            await ws.send(json.dumps({"type": "output", "seq": 2, "lines": [{**line, "offset": 10**9}]}))
            await ws.send(json.dumps({"type": "exited", "run_id": str(run["id"]), "outcome": {"exit_code": 1}}))
            return [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]

    # Acknowledged (sent again, they would be dropped again), logged, and never applied.
    assert asyncio.run(impostor()) == [{"type": "ack", "seq": 1}, {"type": "ack", "seq": 2}]
    wait_until(lambda: "not its own" in serve.output(), 10, 0.1, "the warning")
    assert api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running"
    spoofed = api.get("/api/v1/logs", params={"run_id": str(run["id"]), "q": "SPOOFED"}).json()["items"]
    assert spoofed == []
    second = api.post("/api/v1/robots/payroll/start")
    assert second.status_code == 409, second.text  # still one instance: max_concurrent holds
    assert api.post(f"/api/v1/runs/{run['id']}/kill").status_code == 200
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "killed", 20, 0.1, "the kill")


def test_the_hub_passes_on_what_an_agent_says_about_its_own_runs_only() -> None:
    """The hub's own check, before any service: the robots service is asked nothing about another's run."""
    hub = AgentHub()
    exits: list[tuple[str, str]] = []
    stored: list[Row] = []

    async def run_exited(agent: str, run_id: str, outcome: dict[str, Any]) -> None:
        exits.append((agent, run_id))

    async def store_output(rows: list[Row]) -> None:
        stored.extend(rows)

    owners, robots = {"1": "local", "2": "pc-evil"}, {"1": "payroll", "2": "evil-bot"}
    hub.listeners = HubListeners(
        run_exited=run_exited, store_output=store_output, run_agent=owners.get, run_robot=robots.get
    )
    line = {"stream": "stdout", "label": "payroll", "line": "hello", "offset": 0}

    async def say() -> list[dict[str, Any]]:
        await handle(hub, "pc-evil", {"type": "exited", "run_id": "1", "outcome": {"exit_code": 1}})
        await handle(hub, "pc-evil", {"type": "exited", "run_id": "2", "outcome": {"exit_code": 0}})
        await handle(hub, "pc-evil", {"type": "output", "lines": [{**line, "run_id": r} for r in ("1", "2", "3")]})
        return await own_runs(hub, "pc-evil", [{"run_id": r, "alive": True} for r in ("1", "2", "../9")])

    assert asyncio.run(say()) == [{"run_id": "2", "alive": True}]
    assert exits == [("pc-evil", "2")]
    # Its own run's line, under its own run's robot: the label "payroll" it gave passes it off as nothing else.
    assert [(row.source, row.run_id, row.message) for row in stored] == [("robot:evil-bot", "2", "hello")]


def test_a_malformed_hello_is_refused_with_a_reason_and_no_traceback(start_serve: StartServe) -> None:
    serve = start_serve()
    token = serve.agent_token("pc-05")
    deep = "[" * 100_000 + "]" * 100_000
    for first in ("[1, 2]", deep, '"hello"', "not json", b"\x00binary"):
        code, reason = refused(serve, token, first)
        assert code == 4400 and reason == "expected a hello (a JSON object)", (first[:10], code, reason)
    for name in ("pc/05", "pc\u0000x"):
        code, reason = refused(serve, token, hello(name))
        assert code == 4400 and "agent name" in reason, (name, code, reason)
    with serve.api() as api:
        audit = api.get("/api/v1/audit", params={"action": "agent.connect", "outcome": "denied"}).json()["items"]
    assert {record["target"] for record in audit} == {"pc/05", "pc\\u0000x"}

    async def malformed_after_welcome() -> tuple[int, str]:
        async with websockets.connect(url_of(serve), additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.send(json.dumps(hello("pc-05")))
            assert json.loads(await ws.recv())["type"] == "welcome"
            await ws.send(deep)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None
            return closed.value.rcvd.code, closed.value.rcvd.reason

    code, reason = asyncio.run(malformed_after_welcome())
    assert code == 1011 and "nested too deeply" in reason
    assert "Traceback" not in serve.output() and "Exception in ASGI application" not in serve.output()
