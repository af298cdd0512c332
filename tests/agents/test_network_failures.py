"""A live remote agent whose network fails mid-command: a real `robofleet serve`, a real `robofleet agent`, and
between them a proxy that cuts, refuses or silences their connection while both processes stay alive.

The promise under test: every command has an id, so a reconnect neither loses nor repeats one; results of
commands that finished while the agent was away are delivered after; robot output arrives once, in order."""

from __future__ import annotations

import itertools
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AgentProcess, FlakyProxy, ServeProcess, StartAgent, StartServe, wait_until

pytestmark = pytest.mark.slow
AGENT = "pc-net"
HEARTBEAT = 0.5
COUNTER = [sys.executable, str(Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py")]


@dataclass
class Fleet:
    serve: ServeProcess
    proxy: FlakyProxy
    api: httpx.Client
    folder: Path
    agent: AgentProcess

    def online(self) -> bool:
        return AGENT in [a["name"] for a in self.api.get("/api/v1/agents").json()["items"] if a["online"]]

    def wait_offline(self, seconds: float = 5) -> None:
        wait_until(lambda: not self.online(), seconds, message=f"serve to mark {AGENT} offline")

    def wait_online(self, seconds: float = 15) -> None:
        wait_until(self.online, seconds, message=f"{AGENT} to be connected again")

    def shell(self, command: str, timeout: float = 20) -> httpx.Response:
        return self.api.post(f"/api/v1/agents/{AGENT}/shell", json={"command": command, "timeout": timeout})


@pytest.fixture
def fleet(
    tmp_path: Path, flaky_proxy: Callable[[int], FlakyProxy], start_serve: StartServe, start_agent: StartAgent
) -> Fleet:
    # A long grace: a cut must not make runs lost; short heartbeats: a silent link is noticed in seconds.
    env = {"ROBOFLEET_AGENTS__GRACE_SECONDS": "120", "ROBOFLEET_AGENTS__HEARTBEAT_SECONDS": str(HEARTBEAT)}
    serve = start_serve(tmp_path / "server", env=env)
    proxy = flaky_proxy(serve.port)
    api = serve.api(timeout=60)
    user = {"username": AGENT, "password": "agent-password", "roles": ["agent"]}
    assert api.post("/api/v1/users", json=user).status_code == 201
    token = api.post("/api/v1/tokens", json={"user": AGENT, "agent": AGENT}).json()["token"]
    # Through the proxy, on the same state directory each time it starts (a restart finds its runs).
    agent = start_agent(proxy.url, AGENT, token=token, state_dir=tmp_path / "agent")
    fleet = Fleet(serve, proxy, api, tmp_path, agent)
    fleet.wait_online()
    return fleet


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize("agent_back", ["after the command ended", "while the command still runs"])
def test_a_shell_command_cut_off_midway_runs_once_and_its_caller_gets_the_result(fleet: Fleet, agent_back: str) -> None:
    ran, gate, ended = fleet.folder / "ran.txt", fleet.folder / "gate", fleet.folder / "ended"
    # The command waits for the test to open its gate, so the cut lands inside it whatever the machine's speed.
    script = f"echo once >> {ran}; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished; touch {ended}"
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(fleet.shell, script)
        wait_until(ran.exists, message="the command to start on the agent")
        fleet.proxy.refuse()
        fleet.proxy.cut()
        fleet.wait_offline()
        if agent_back == "after the command ended":
            gate.touch()
            wait_until(ended.exists, message="the command to end on the agent")
            time.sleep(0.3)  # let the worker hand its result over while the agent is still away
            assert not fleet.online()
        fleet.proxy.allow()
        fleet.wait_online()
        if agent_back == "while the command still runs":
            assert not ended.exists()
            gate.touch()
        response = answer.result(30)
    assert response.status_code == 200, response.text
    assert response.json()["stdout"] == "finished\n" and response.json()["exit_code"] == 0
    assert lines_of(ran) == ["once"]
    assert fleet.shell(f"cat {ran}").json()["stdout"] == "once\n"  # and no second run turned up later


def test_a_command_for_an_agent_that_is_away_is_refused_by_name_and_never_runs_later(fleet: Fleet) -> None:
    never = fleet.folder / "never.txt"
    fleet.proxy.refuse()
    fleet.proxy.cut()
    fleet.wait_offline()
    refused = fleet.shell(f"echo ran >> {never}")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "agent_offline" and AGENT in error["message"]
    away = fleet.api.get(f"/api/v1/agents/{AGENT}").json()  # still known: offline since it was cut
    assert away["online"] is False and away["offline_since"]
    fleet.proxy.allow()
    fleet.wait_online()
    # Commands kept for an agent go out right after its hello; this one's second leaves time for any to run.
    checked = fleet.shell(f"sleep 1; cat {never} 2>/dev/null; echo checked")
    assert checked.json()["stdout"] == "checked\n"
    assert not never.exists()


def test_a_silent_network_is_noticed_by_heartbeats_and_a_command_sent_into_it_runs_once_after(
    fleet: Fleet,
) -> None:
    ran, dialed = fleet.folder / "ran.txt", fleet.proxy.accepted
    fleet.proxy.silence()
    silent_since = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(fleet.shell, f"echo once >> {ran}; echo answered")
        fleet.wait_offline(3 * HEARTBEAT + 5)
        # Three heartbeats missed, and the time to see it: not uvicorn's 40 s of keepalive pings.
        assert time.monotonic() - silent_since < 3 * HEARTBEAT + 3
        # The agent gives the link up too (its pings go unanswered), and dials again into the silence.
        wait_until(lambda: fleet.proxy.accepted > dialed, 3 * HEARTBEAT + 5, message="the agent to dial again")
        assert not ran.exists() and not answer.done()  # the command is somewhere in the dead link
        fleet.proxy.restore()
        fleet.wait_online()
        response = answer.result(30)
    assert response.status_code == 200, response.text
    assert response.json()["stdout"] == "answered\n"
    assert lines_of(ran) == ["once"]


def counted(api: httpx.Client, run_id: int, robot: str) -> list[int]:
    """The numbers the counter robot printed, as the log store holds them, oldest first."""
    numbers: list[int] = []
    params: dict[str, Any] = {"run_id": str(run_id), "source": f"robot:{robot}", "order": "asc", "limit": 1000}
    while True:
        page = api.get("/api/v1/logs", params=params).json()
        numbers += [int(item["message"].removeprefix("count ")) for item in page["items"]]
        if not page["next_cursor"]:
            return numbers
        params["cursor"] = page["next_cursor"]


def more_output(api: httpx.Client, run_id: int, robot: str, lines: int = 10) -> None:
    known = len(counted(api, run_id, robot))
    wait_until(lambda: len(counted(api, run_id, robot)) >= known + lines, message=f"{lines} more lines of output")


def test_a_robot_runs_on_through_cuts_and_its_output_arrives_once_in_order(fleet: Fleet) -> None:
    api, rng = fleet.api, random.Random(3)
    robot = {"name": "steady", "agent": AGENT, "argv": [*COUNTER, "--every", "0.02"], "safe_stop_timeout": 5}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/steady/start").json()
    assert run["state"] == "running", run
    for silent in (False, True, False, True):
        more_output(api, run["id"], "steady")
        time.sleep(rng.uniform(0, 0.2))
        if silent:  # what the agent sends now seems to go out, but never arrives
            fleet.proxy.silence()
            time.sleep(1)
        fleet.proxy.refuse()
        fleet.proxy.cut()
        fleet.proxy.restore()
        fleet.wait_offline()
        time.sleep(0.5)  # the robot writes on while its agent is away
        fleet.proxy.allow()
        fleet.wait_online()
        assert api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "running"
    more_output(api, run["id"], "steady")
    assert api.post(f"/api/v1/runs/{run['id']}/stop").status_code == 200
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "stopped", message="the run to stop")
    numbers = counted(api, run["id"], "steady")
    assert numbers == list(range(1, len(numbers) + 1)), (
        f"gaps or repeats: {sorted(set(numbers) ^ set(range(1, len(numbers) + 1)))}"
    )


@pytest.mark.parametrize("lost", ["the output on its way", "the acknowledgements"])
def test_an_agent_killed_before_its_output_was_acknowledged_sends_it_again_after_its_restart_once(
    fleet: Fleet, lost: str
) -> None:
    api = fleet.api
    robot = {"name": "steady", "agent": AGENT, "argv": [*COUNTER, "--every", "0.02"], "safe_stop_timeout": 5}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/steady/start").json()
    more_output(api, run["id"], "steady", 20)
    # What the agent reads now is never acknowledged: either it never arrives, or serve stores it and its
    # acknowledgements never arrive. Then the agent dies (its robot, in a session of its own, does not).
    if lost == "the acknowledgements":
        fleet.proxy.silence_toward_agent()
        more_output(api, run["id"], "steady", 20)  # stored, but the agent does not learn it
    else:
        fleet.proxy.silence()
        time.sleep(1)
    fleet.agent.kill()
    fleet.proxy.refuse()
    fleet.proxy.cut()
    fleet.proxy.restore()
    fleet.wait_offline(3 * HEARTBEAT + 5)
    fleet.proxy.allow()
    fleet.agent.start()
    fleet.wait_online()
    more_output(api, run["id"], "steady", 100)
    assert api.post(f"/api/v1/runs/{run['id']}/stop").status_code == 200
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "stopped", message="the run to stop")
    numbers = counted(api, run["id"], "steady")
    missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
    assert not missing, f"lines lost: {missing[:5]}… ({len(missing)})"
    assert numbers == list(range(1, len(numbers) + 1)), "lines repeated or out of order"


def test_five_cuts_at_random_moments_while_commands_flow_answer_each_command_exactly_once(fleet: Fleet) -> None:
    journal, rng = fleet.folder / "journal.txt", random.Random(5)
    numbers, stop = itertools.count(1), threading.Event()
    outcomes: dict[int, tuple[int, float, float, str]] = {}

    def issue() -> None:
        with httpx.Client(base_url=fleet.serve.url, headers=fleet.api.headers, timeout=60) as api:
            while not stop.is_set():
                number, began = next(numbers), time.monotonic()
                # Some commands end before the agent is back, some after: both must run once.
                command = f"echo {number} >> {journal}; sleep {rng.choice([0.1, 0.4, 1.5])}; echo {number}"
                response = api.post(f"/api/v1/agents/{AGENT}/shell", json={"command": command, "timeout": 20})
                outcomes[number] = (response.status_code, began, time.monotonic(), response.text)
                if response.status_code == 409:
                    time.sleep(0.05)

    cuts: list[float] = []
    with ThreadPoolExecutor(3) as pool:
        issuers = [pool.submit(issue) for _ in range(3)]
        for _ in range(5):
            fleet.wait_online()
            time.sleep(rng.uniform(0.3, 1.2))
            cuts.append(time.monotonic())
            fleet.proxy.cut()
        fleet.wait_online()
        time.sleep(0.5)
        stop.set()
        for issuer in issuers:
            issuer.result(60)
    ran = Counter(lines_of(journal))
    assert set(ran) <= {str(number) for number in outcomes}
    for number, (status, _, _, text) in sorted(outcomes.items()):
        if status == 200:
            assert json.loads(text)["stdout"] == f"{number}\n" and ran[str(number)] == 1, (number, ran[str(number)])
        else:
            assert status == 409 and "agent_offline" in text and ran[str(number)] == 0, (number, status, text)
    spanning = [
        n
        for n, (status, began, ended, _) in outcomes.items()
        if status == 200 and any(began < cut < ended for cut in cuts)
    ]
    assert len(spanning) >= 3, "the cuts should land on commands in flight"
