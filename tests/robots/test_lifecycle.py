"""Robots and runs through the API, on both stores, with the embedded local agent and real process trees."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import psutil
from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer, wait_until
from tests.robots.conftest import COUNTER, EXAMPLES, RobotsApi


def test_a_run_goes_through_every_lifecycle_action(client: TestClient, admin_token: str, robots: RobotsApi) -> None:
    robots.make("counter", COUNTER, safe_stop_timeout=5, tags=["demo"])
    run = robots.start("counter")
    assert run["state"] == "running" and run["pid"] and run["manual"]
    busy = client.post("/api/v1/robots/counter/start", headers=bearer(admin_token))
    assert busy.status_code == 409 and "max_concurrent" in busy.json()["error"]["message"]
    paused = client.post(f"/api/v1/runs/{run['id']}/pause", headers=bearer(admin_token)).json()
    assert paused["state"] == "paused"
    again = client.post(f"/api/v1/runs/{run['id']}/pause", headers=bearer(admin_token))
    assert again.status_code == 409 and again.json()["error"]["details"]["state"] == "paused"
    assert client.post("/api/v1/robots/counter/resume", headers=bearer(admin_token)).json()[0]["state"] == "running"
    stopping = client.post("/api/v1/robots/counter/stop", headers=bearer(admin_token)).json()[0]
    assert stopping["state"] == "stopping"
    ended = robots.wait_run(run["id"], "stopped")
    assert [t["state"] for t in ended["transitions"]] == [
        "starting",
        "running",
        "paused",
        "running",
        "stopping",
        "stopped",
    ]
    assert all(t["at"] and t["by"] for t in ended["transitions"]) and ended["ended_at"]
    assert client.get("/api/v1/robots/counter", headers=bearer(admin_token)).json()["manual_stop"] is True
    assert client.post(f"/api/v1/runs/{run['id']}/resume", headers=bearer(admin_token)).status_code == 409
    audit = client.get("/api/v1/audit", params={"action": "run."}, headers=bearer(admin_token)).json()["items"]
    assert {"run.pause", "run.resume", "run.stop"} <= {record["action"] for record in audit}


def test_exit_codes_decide_the_outcome_and_output_reaches_the_logs(
    client: TestClient, admin_token: str, robots: RobotsApi
) -> None:
    robots.make("finite", [*COUNTER, "--until", "3"])
    robots.make(
        "broken",
        [sys.executable, "-c", "import sys; print('bad input', file=sys.stderr); sys.exit(3)"],
    )
    good = robots.wait_run(robots.start("finite")["id"], "succeeded")
    bad = robots.wait_run(robots.start("broken")["id"], "failed")
    assert good["exit_code"] == 0 and bad["exit_code"] == 3

    def logged() -> list[dict[str, Any]]:
        params = {"run_id": str(good["id"]), "order": "asc"}
        items = client.get("/api/v1/logs", params=params, headers=bearer(admin_token)).json()["items"]
        return items  # type: ignore[no-any-return]

    lines = wait_until(lambda: found if len(found := logged()) >= 3 else None, 5, interval=0.1, message=logged)
    assert [line["message"] for line in lines] == ["count 1", "count 2", "count 3"]
    assert lines[0]["source"] == "robot:finite"
    params = {"run_id": str(bad["id"]), "source": "robot:broken"}
    errors = client.get("/api/v1/logs", params=params, headers=bearer(admin_token)).json()
    assert errors["items"][0]["message"] == "bad input" and errors["items"][0]["level"] == "INFO"


def test_kill_ends_the_whole_tree(client: TestClient, admin_token: str, tmp_path: Path, robots: RobotsApi) -> None:
    pids_file = tmp_path / "pids.txt"
    robots.make("tree", [sys.executable, str(EXAMPLES / "spawner.py"), "--pids", str(pids_file)])
    run = robots.start("tree")
    wait_until(lambda: pids_file.exists() and len(pids_file.read_text().splitlines()) >= 3, 10, message="3 pids")
    pids = [int(line.split()[1]) for line in pids_file.read_text().splitlines()]
    client.post(f"/api/v1/runs/{run['id']}/pause", headers=bearer(admin_token))
    assert all(psutil.Process(pid).status() == psutil.STATUS_STOPPED for pid in pids)
    killed = client.post(f"/api/v1/runs/{run['id']}/kill", headers=bearer(admin_token))
    assert killed.status_code == 200
    assert robots.wait_run(run["id"], "killed")["state"] == "killed"
    wait_until(
        lambda: not any(psutil.pid_exists(pid) for pid in pids),
        5,
        message=lambda: f"the tree gone: {[psutil.Process(p).status() for p in pids if psutil.pid_exists(p)]}",
    )


def test_max_runtime_stops_a_run(client: TestClient, admin_token: str, robots: RobotsApi) -> None:
    robots.make("short", COUNTER, max_runtime=0.5, safe_stop_timeout=2)
    run = robots.start("short")
    ended = robots.wait_run(run["id"], "stopped", seconds=10)
    assert ended["transitions"][-2]["by"] == "max_runtime"


def test_bad_requests_change_nothing(
    client: TestClient, admin_token: str, make_user: MakeUser, robots: RobotsApi
) -> None:
    headers = bearer(admin_token)
    assert client.post("/api/v1/robots/ghost/start", headers=headers).status_code == 404
    assert client.get("/api/v1/runs/999999", headers=headers).status_code == 404
    assert client.post("/api/v1/robots", headers=headers, json={"name": "x", "argv": []}).status_code == 422
    assert client.post("/api/v1/robots", headers=headers, json={"name": "bad name", "argv": ["a"]}).status_code == 422
    assert (
        client.post(
            "/api/v1/robots", headers=headers, json={"name": "x", "argv": ["a"], "restart": {"policy": "always"}}
        ).status_code
        == 422
    )
    robots.make("remote", COUNTER, agent="pc-99")
    offline = client.post("/api/v1/robots/remote/start", headers=headers)
    assert offline.status_code == 409 and offline.json()["error"]["code"] == "agent_offline"
    assert client.get("/api/v1/runs", params={"robot": "remote"}, headers=headers).json()["items"] == []
    robots.make("busy", COUNTER)
    run = robots.start("busy")
    assert client.delete("/api/v1/robots/busy", headers=headers).status_code == 409
    client.post(f"/api/v1/runs/{run['id']}/kill", headers=headers)
    robots.wait_run(run["id"], "killed")
    assert client.delete("/api/v1/robots/busy", headers=headers).status_code == 204


def test_permissions_follow_robot_scopes(
    client: TestClient, admin_token: str, make_user: MakeUser, robots: RobotsApi
) -> None:
    client.post(
        "/api/v1/roles",
        headers=bearer(admin_token),
        json={"name": "billing-ops", "permissions": ["robots:*"], "robot_globs": ["billing-*"]},
    )
    scoped = make_user("bo", ["billing-ops"])
    viewer = make_user("vi", ["viewer"])
    robots.make("billing-invoices", [*COUNTER, "--until", "1"])
    robots.make("hr-onboarding", [*COUNTER, "--until", "1"], env={"API_PASSWORD": "hunter2"})
    assert client.post("/api/v1/robots/billing-invoices/start", headers=bearer(viewer)).status_code == 403
    # Outside its scope, a robot is as unknown as one that does not exist (a 403 would tell it exists).
    assert client.post("/api/v1/robots/hr-onboarding/start", headers=bearer(scoped)).status_code == 404
    assert client.post("/api/v1/robots/billing-invoices/start", headers=bearer(scoped)).status_code == 201
    listed = client.get("/api/v1/robots", headers=bearer(scoped)).json()["items"]
    assert [r["name"] for r in listed] == ["billing-invoices"]
    shown = client.get("/api/v1/robots/hr-onboarding", headers=bearer(admin_token)).json()
    assert shown["env"] == {"API_PASSWORD": "********"}
    # Runs too: a scoped reader sees the runs of its robots only.
    hr_run = client.post("/api/v1/robots/hr-onboarding/start", headers=bearer(admin_token)).json()
    runs = client.get("/api/v1/runs", headers=bearer(scoped)).json()["items"]
    assert {r["robot"] for r in runs} == {"billing-invoices"}
    assert client.get(f"/api/v1/runs/{hr_run['id']}", headers=bearer(scoped)).status_code == 404
    assert {r["robot"] for r in client.get("/api/v1/runs", headers=bearer(viewer)).json()["items"]} == {
        "billing-invoices",
        "hr-onboarding",
    }


def test_a_safe_stop_lets_an_sdk_robot_finish_its_step(client: TestClient, admin_token: str, robots: RobotsApi) -> None:
    robots.make(
        "careful",
        [sys.executable, str(EXAMPLES / "careful.py"), "--step", "0.8"],
        safe_stop_timeout=10,
    )
    run = robots.start("careful")

    def lines() -> list[str]:
        items = client.get(
            "/api/v1/logs", params={"run_id": str(run["id"]), "order": "asc"}, headers=bearer(admin_token)
        ).json()["items"]
        return [item["message"] for item in items]

    wait_until(lambda: "step 1 begins" in lines(), 10, message="step 1 to begin")
    client.post(f"/api/v1/runs/{run['id']}/stop", headers=bearer(admin_token))
    ended = robots.wait_run(run["id"], "stopped")
    assert ended["exit_code"] == 0  # it left by itself, not killed at the timeout
    wait_until(lambda: "stop requested: left cleanly after step 1" in lines(), 5, message=lines)
    assert lines()[:2] == ["step 1 begins", "step 1 done"] and "step 2 begins" not in lines()


def test_on_failure_restarts_with_backoff_then_gives_up(
    client: TestClient, admin_token: str, robots: RobotsApi
) -> None:
    robots.make(
        "flaky",
        [sys.executable, "-c", "import sys; sys.exit(2)"],
        restart={"policy": "on-failure", "backoff_seconds": 0.1, "give_up_after": 3, "window_seconds": 60},
    )
    first = robots.start("flaky")

    def flaky_runs() -> list[dict[str, Any]]:
        items = client.get("/api/v1/runs", params={"robot": "flaky"}, headers=bearer(admin_token)).json()["items"]
        return items  # type: ignore[no-any-return]

    wait_until(
        lambda: len(runs := flaky_runs()) >= 3 and all(run["state"] == "failed" for run in runs),
        20,
        interval=0.1,
        message=flaky_runs,
    )
    time.sleep(1.0)  # the third failure in the window: no fourth start
    runs = client.get("/api/v1/runs", params={"robot": "flaky"}, headers=bearer(admin_token)).json()["items"]
    assert len(runs) == 3 and runs[-1]["id"] == first["id"]
    assert [run["manual"] for run in runs] == [False, False, True]
    assert runs[0]["requested_by"] == "restart-policy"


def test_a_manual_stop_is_not_followed_by_a_restart(client: TestClient, admin_token: str, robots: RobotsApi) -> None:
    robots.make(
        "steady",
        COUNTER,
        safe_stop_timeout=3,
        restart={"policy": "on-failure", "backoff_seconds": 0.1},
    )
    run = robots.start("steady")
    client.post(f"/api/v1/runs/{run['id']}/stop", headers=bearer(admin_token))
    robots.wait_run(run["id"], "stopped")
    time.sleep(0.5)
    runs = client.get("/api/v1/runs", params={"robot": "steady"}, headers=bearer(admin_token)).json()["items"]
    assert len(runs) == 1
