"""Cooperative pause through the API, on both stores, with the embedded local agent and real robots: an SDK robot
holds at `sdk.checkpoint()` alive; one that does not reach a checkpoint in time is frozen; others are frozen."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import psutil
from fastapi.testclient import TestClient

from tests.conftest import bearer
from tests.robots.test_lifecycle import COUNTER, EXAMPLES, robot, start, wait_state

STEPWISE = [sys.executable, str(EXAMPLES / "stepwise.py")]


def output(client: TestClient, token: str, run: dict[str, Any]) -> list[str]:
    items = client.get(
        "/api/v1/logs",
        params={"run_id": str(run["id"]), "source": f"robot:{run['robot']}", "order": "asc", "limit": 500},
        headers=bearer(token),
    ).json()["items"]
    return [item["message"] for item in items]


def wait_output(client: TestClient, token: str, run: dict[str, Any], line: str, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while line not in (lines := output(client, token, run)):
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    return lines


def statuses(run: dict[str, Any]) -> list[str]:
    """psutil statuses of the run's robot process and its descendants."""
    process = psutil.Process(run["pid"])
    return [p.status() for p in (process, *process.children(recursive=True))]


def frozen(run: dict[str, Any], seconds: float = 5) -> bool:
    """Every process of the run stopped; SIGSTOP lands a moment after it was sent."""
    deadline = time.monotonic() + seconds
    while set(statuses(run)) != {psutil.STATUS_STOPPED}:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def act(client: TestClient, token: str, run: dict[str, Any], action: str) -> dict[str, Any]:
    answer = client.post(f"/api/v1/runs/{run['id']}/{action}", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_an_sdk_robot_pauses_at_a_checkpoint_alive_and_resumes(
    client: TestClient, admin_token: str, tmp_path: Path
) -> None:
    heartbeat = tmp_path / "heartbeat"
    robot(client, admin_token, "stepwise", [*STEPWISE, "--step", "0.2", "--heartbeat", str(heartbeat)])
    run = start(client, admin_token, "stepwise")
    wait_output(client, admin_token, run, "step 2 done")
    act(client, admin_token, run, "pause")
    paused = wait_state(client, admin_token, run["id"], "paused", seconds=5)
    assert paused["transitions"][-1]["pause"] == "cooperative" and paused["pause_asked_at"] is None
    assert psutil.STATUS_STOPPED not in statuses(paused)
    time.sleep(0.5)  # the last lines written before the checkpoint reach the store
    held = output(client, admin_token, run)
    beat = heartbeat.read_text()
    time.sleep(1.0)
    assert output(client, admin_token, run) == held  # no step while paused
    assert held[-1].endswith("done") and heartbeat.read_text() != beat  # between steps, and alive
    assert client.post(f"/api/v1/runs/{run['id']}/pause", headers=bearer(admin_token)).status_code == 409

    assert act(client, admin_token, run, "resume")["state"] == "running"
    wait_output(client, admin_token, run, f"step {int(held[-1].split()[1]) + 2} done")
    assert [t["state"] for t in wait_state(client, admin_token, run["id"], "running")["transitions"]] == [
        "starting",
        "running",
        "paused",
        "running",
    ]
    act(client, admin_token, run, "pause")
    wait_state(client, admin_token, run["id"], "paused", seconds=5)
    act(client, admin_token, run, "kill")  # a robot holding at a checkpoint dies like any other
    assert wait_state(client, admin_token, run["id"], "killed")["exit_code"] is None


def test_a_safe_stop_of_a_run_paused_at_a_checkpoint_ends_it_after_its_step(
    client: TestClient, admin_token: str
) -> None:
    robot(client, admin_token, "careful-steps", [*STEPWISE, "--step", "0.6"], safe_stop_timeout=10)
    run = start(client, admin_token, "careful-steps")
    wait_output(client, admin_token, run, "step 1 begins")
    asked = act(client, admin_token, run, "pause")  # mid-step: it pauses once the step is done
    assert asked["state"] == "running" and asked["pause_asked_at"]
    wait_state(client, admin_token, run["id"], "paused", seconds=5)
    assert act(client, admin_token, run, "stop")["state"] == "stopping"
    ended = wait_state(client, admin_token, run["id"], "stopped", seconds=5)
    assert ended["exit_code"] == 0  # it left by itself, at once, not killed at the timeout
    lines = wait_output(client, admin_token, run, "left after step 1 (stop requested)")
    assert lines == ["step 1 begins", "step 1 done", "left after step 1 (stop requested)"]
    assert [t["state"] for t in ended["transitions"]][-3:] == ["paused", "stopping", "stopped"]
    assert client.post(f"/api/v1/runs/{run['id']}/pause", headers=bearer(admin_token)).status_code == 409


def test_a_robot_that_does_not_reach_a_checkpoint_in_time_is_frozen(client: TestClient, admin_token: str) -> None:
    robot(client, admin_token, "slow-steps", [*STEPWISE, "--step", "60"], safe_stop_timeout=1)
    run = start(client, admin_token, "slow-steps")
    wait_output(client, admin_token, run, "step 1 begins")
    asked = act(client, admin_token, run, "pause")
    assert asked["state"] == "running" and asked["pause_asked_at"]
    assert act(client, admin_token, run, "pause")["pause_asked_at"] == asked["pause_asked_at"]  # asked once
    paused = wait_state(client, admin_token, run["id"], "paused", seconds=5)
    note = paused["transitions"][-1]
    assert note["pause"] == "frozen" and "no checkpoint reached within 1 s" in note["reason"]
    assert frozen(paused)
    act(client, admin_token, run, "kill")
    assert wait_state(client, admin_token, run["id"], "killed")["state"] == "killed"


def test_resume_calls_off_a_pause_still_waiting_for_a_checkpoint(client: TestClient, admin_token: str) -> None:
    robot(client, admin_token, "changed-mind", [*STEPWISE, "--step", "60"], safe_stop_timeout=1)
    run = start(client, admin_token, "changed-mind")
    wait_output(client, admin_token, run, "step 1 begins")
    assert act(client, admin_token, run, "pause")["pause_asked_at"]
    resumed = act(client, admin_token, run, "resume")
    assert resumed["state"] == "running" and resumed["pause_asked_at"] is None
    time.sleep(1.5)  # past the robot's time to reach a checkpoint: nothing freezes it
    current = wait_state(client, admin_token, run["id"], "running")
    assert [t["state"] for t in current["transitions"]] == ["starting", "running"]
    assert psutil.STATUS_STOPPED not in statuses(current)
    assert client.post(f"/api/v1/runs/{run['id']}/resume", headers=bearer(admin_token)).status_code == 409
    act(client, admin_token, run, "kill")
    wait_state(client, admin_token, run["id"], "killed")


def test_a_robot_without_the_sdk_is_frozen_at_once(client: TestClient, admin_token: str) -> None:
    robot(client, admin_token, "plain", COUNTER)
    run = start(client, admin_token, "plain")
    wait_output(client, admin_token, run, "count 2")
    paused = act(client, admin_token, run, "pause")
    assert paused["state"] == "paused" and paused["transitions"][-1]["pause"] == "frozen"
    assert frozen(paused)
    assert act(client, admin_token, run, "resume")["state"] == "running"
    assert psutil.STATUS_STOPPED not in statuses(paused)
    act(client, admin_token, run, "kill")
    wait_state(client, admin_token, run["id"], "killed")
