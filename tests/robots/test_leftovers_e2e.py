"""What a run leaves behind ends with it: a setsid grandchild of a safely stopped robot is ended and counted,
unless the robot says keep_leftovers."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer, wait_until

# Starts `sleep` in a session of its own (out of the robot's process group), says its pid, then waits to be stopped.
ESCAPER = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen(['setsid', 'sleep', '300'])\n"
    "open(sys.argv[1], 'w').write(str(child.pid))\n"
    "time.sleep(600)\n"
)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_escaper(client: TestClient, token: str, tmp_path: Path, *, keep: bool) -> tuple[dict[str, Any], int]:
    pid_file = tmp_path / f"grandchild-{keep}.pid"
    robot = {
        "name": f"escaper-{str(keep).lower()}",
        "argv": [sys.executable, "-c", ESCAPER, str(pid_file)],
        "safe_stop_timeout": 5,
        "keep_leftovers": keep,
    }
    assert client.post("/api/v1/robots", headers=bearer(token), json=robot).status_code == 201
    run: dict[str, Any] = client.post(f"/api/v1/robots/{robot['name']}/start", headers=bearer(token)).json()
    grandchild = wait_until(lambda: pid_file.exists() and pid_file.read_text() and int(pid_file.read_text()))
    # `setsid` leaves the robot's session a moment after its pid is known.
    wait_until(lambda: os.getsid(grandchild) != os.getsid(run["pid"]), message="the grandchild to leave the session")
    assert alive(grandchild)
    return run, grandchild


def ended(client: TestClient, token: str, run_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}", headers=bearer(token)).json()
        return run if run["state"] not in ("running", "stopping") else None

    return wait_until(done, timeout=20, message=f"run {run_id} to end")


def test_a_safe_stop_ends_what_the_run_left_behind(client: TestClient, admin_token: str, tmp_path: Path) -> None:
    run, grandchild = start_escaper(client, admin_token, tmp_path, keep=False)
    assert client.post(f"/api/v1/runs/{run['id']}/stop", headers=bearer(admin_token)).status_code == 200
    finished = ended(client, admin_token, run["id"])
    assert finished["state"] == "stopped" and finished["leftovers"] == 1
    assert not alive(grandchild)


def test_keep_leftovers_leaves_them_running(client: TestClient, admin_token: str, tmp_path: Path) -> None:
    run, grandchild = start_escaper(client, admin_token, tmp_path, keep=True)
    try:
        assert client.post(f"/api/v1/runs/{run['id']}/stop", headers=bearer(admin_token)).status_code == 200
        finished = ended(client, admin_token, run["id"])
        assert finished["state"] == "stopped" and not finished["leftovers"]
        assert alive(grandchild)
        robot = client.get("/api/v1/robots/escaper-true", headers=bearer(admin_token)).json()
        assert robot["keep_leftovers"] is True
    finally:
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_killed_run_takes_its_escaped_processes_along(client: TestClient, admin_token: str, tmp_path: Path) -> None:
    run, grandchild = start_escaper(client, admin_token, tmp_path, keep=False)
    assert client.post(f"/api/v1/runs/{run['id']}/kill", headers=bearer(admin_token)).status_code == 200
    assert ended(client, admin_token, run["id"])["state"] == "killed"
    assert wait_until(lambda: not alive(grandchild), message="the escaped grandchild to be gone")
