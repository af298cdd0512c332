"""Cooperative pause through the API, on both stores, with the embedded local agent and real robots: an SDK robot
holds at `sdk.checkpoint()` alive; one that does not reach a checkpoint in time is frozen; others are frozen."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
from fastapi.testclient import TestClient

from tests.conftest import bearer, wait_until
from tests.robots.conftest import COUNTER, STEPWISE, RobotsApi


def statuses(run: dict[str, Any]) -> list[str]:
    """psutil statuses of the run's robot process and its descendants."""
    process = psutil.Process(run["pid"])
    return [p.status() for p in (process, *process.children(recursive=True))]


def frozen(run: dict[str, Any], seconds: float = 5) -> bool:
    """Every process of the run stopped (SIGSTOP lands a moment after it was sent); fails after `seconds`."""
    return wait_until(
        lambda: set(statuses(run)) == {psutil.STATUS_STOPPED},
        seconds,
        interval=0.02,
        message=lambda: f"every process of run {run['id']} stopped: {statuses(run)}",
    )


def test_an_sdk_robot_pauses_at_a_checkpoint_alive_and_resumes(
    client: TestClient, admin_token: str, tmp_path: Path, robots: RobotsApi
) -> None:
    heartbeat = tmp_path / "heartbeat"
    robots.make("stepwise", [*STEPWISE, "--step", "0.2", "--heartbeat", str(heartbeat)])
    run = robots.start("stepwise")
    robots.wait_output(run, "step 2 done")
    robots.act(run, "pause")
    paused = robots.wait_run(run["id"], "paused", seconds=5)
    assert paused["transitions"][-1]["pause"] == "cooperative" and paused["pause_asked_at"] is None
    assert psutil.STATUS_STOPPED not in statuses(paused)
    time.sleep(0.5)  # the last lines written before the checkpoint reach the store
    held = robots.output(run)
    beat = heartbeat.read_text()
    time.sleep(1.0)
    assert robots.output(run) == held  # no step while paused
    assert held[-1].endswith("done") and heartbeat.read_text() != beat  # between steps, and alive
    assert client.post(f"/api/v1/runs/{run['id']}/pause", headers=bearer(admin_token)).status_code == 409

    assert robots.act(run, "resume")["state"] == "running"
    robots.wait_output(run, f"step {int(held[-1].split()[1]) + 2} done")
    assert [t["state"] for t in robots.wait_run(run["id"], "running")["transitions"]] == [
        "starting",
        "running",
        "paused",
        "running",
    ]
    robots.act(run, "pause")
    robots.wait_run(run["id"], "paused", seconds=5)
    robots.act(run, "kill")  # a robot holding at a checkpoint dies like any other
    assert robots.wait_run(run["id"], "killed")["exit_code"] is None


def test_a_safe_stop_of_a_run_paused_at_a_checkpoint_ends_it_after_its_step(
    client: TestClient, admin_token: str, robots: RobotsApi
) -> None:
    robots.make("careful-steps", [*STEPWISE, "--step", "0.6"], safe_stop_timeout=10)
    run = robots.start("careful-steps")
    robots.wait_output(run, "step 1 begins")
    asked = robots.act(run, "pause")  # mid-step: it pauses once the step is done
    assert asked["state"] == "running" and asked["pause_asked_at"]
    robots.wait_run(run["id"], "paused", seconds=5)
    assert robots.act(run, "stop")["state"] == "stopping"
    ended = robots.wait_run(run["id"], "stopped", seconds=5)
    assert ended["exit_code"] == 0  # it left by itself, at once, not killed at the timeout
    lines = robots.wait_output(run, "left after step 1 (stop requested)")
    assert lines == ["step 1 begins", "step 1 done", "left after step 1 (stop requested)"]
    assert [t["state"] for t in ended["transitions"]][-3:] == ["paused", "stopping", "stopped"]
    assert client.post(f"/api/v1/runs/{run['id']}/pause", headers=bearer(admin_token)).status_code == 409


def test_a_robot_that_does_not_reach_a_checkpoint_in_time_is_frozen(
    client: TestClient, admin_token: str, robots: RobotsApi
) -> None:
    robots.make("slow-steps", [*STEPWISE, "--step", "60"], safe_stop_timeout=1)
    run = robots.start("slow-steps")
    robots.wait_output(run, "step 1 begins")
    asked = robots.act(run, "pause")
    assert asked["state"] == "running" and asked["pause_asked_at"]
    assert robots.act(run, "pause")["pause_asked_at"] == asked["pause_asked_at"]  # asked once
    paused = robots.wait_run(run["id"], "paused", seconds=5)
    note = paused["transitions"][-1]
    assert note["pause"] == "frozen" and "no checkpoint reached within 1 s" in note["reason"]
    assert frozen(paused)
    robots.act(run, "kill")
    assert robots.wait_run(run["id"], "killed")["state"] == "killed"


def test_resume_calls_off_a_pause_still_waiting_for_a_checkpoint(
    client: TestClient, admin_token: str, robots: RobotsApi
) -> None:
    robots.make("changed-mind", [*STEPWISE, "--step", "60"], safe_stop_timeout=1)
    run = robots.start("changed-mind")
    robots.wait_output(run, "step 1 begins")
    assert robots.act(run, "pause")["pause_asked_at"]
    resumed = robots.act(run, "resume")
    assert resumed["state"] == "running" and resumed["pause_asked_at"] is None
    time.sleep(1.5)  # past the robot's time to reach a checkpoint: nothing freezes it
    current = robots.wait_run(run["id"], "running")
    assert [t["state"] for t in current["transitions"]] == ["starting", "running"]
    assert psutil.STATUS_STOPPED not in statuses(current)
    assert client.post(f"/api/v1/runs/{run['id']}/resume", headers=bearer(admin_token)).status_code == 409
    robots.act(run, "kill")
    robots.wait_run(run["id"], "killed")


def test_a_robot_without_the_sdk_is_frozen_at_once(client: TestClient, admin_token: str, robots: RobotsApi) -> None:
    robots.make("plain", COUNTER)
    run = robots.start("plain")
    robots.wait_output(run, "count 2")
    paused = robots.act(run, "pause")
    assert paused["state"] == "paused" and paused["transitions"][-1]["pause"] == "frozen"
    assert frozen(paused)
    assert robots.act(run, "resume")["state"] == "running"
    assert psutil.STATUS_STOPPED not in statuses(paused)
    robots.act(run, "kill")
    robots.wait_run(run["id"], "killed")
