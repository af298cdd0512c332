"""Runs that explain themselves: every failed, killed or lost run carries the reason it ended (`error`), from the
facts where they are (the exit code, the signal, why the program could not start, the exception of the robot's
last traceback or its last ERROR line), in the API, in the state's transition, and in the orchestrator's own log
at ERROR. Real robots with the embedded local agent, on both stores."""

from __future__ import annotations

import sys
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import bearer, wait_until
from tests.robots.conftest import RobotsApi

CRASH = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "logging.info('step 1 of 4')\n"
    "def fetch():\n"
    "    raise ConnectionError('portal down')\n"
    "fetch()\n"
)
BUSINESS_ERROR = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "logging.error('invoice 4711 is over the limit')\n"
    "logging.info('leaving')\n"
    "sys.exit(3)\n"
)
# Ignores SIGTERM: only the kill at its safe-stop timeout ends it.
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
)


def orchestrator_errors(client: TestClient, token: str, run_id: int) -> list[dict[str, Any]]:
    params = {"source": "orchestrator", "run_id": str(run_id), "level": "ERROR"}
    items: list[dict[str, Any]] = client.get("/api/v1/logs", params=params, headers=bearer(token)).json()["items"]
    return items


def test_a_crash_is_failed_with_the_exception_of_its_traceback_and_logged_at_error(
    client: TestClient, admin_token: str, robots: RobotsApi
) -> None:
    robots.make("invoices", [sys.executable, "-c", CRASH])
    failed = robots.wait_run(robots.start("invoices")["id"], "failed", "succeeded")
    assert failed["state"] == "failed" and failed["exit_code"] == 1
    assert failed["error"] == "exit 1: ConnectionError: portal down"
    assert failed["transitions"][-1] == {**failed["transitions"][-1], "state": "failed", "reason": failed["error"]}
    assert failed["exit_meaning"] == "a general error; in Python, an uncaught exception"
    assert failed["duration_seconds"] is not None and failed["duration_seconds"] >= 0
    logged = wait_until(
        lambda: orchestrator_errors(client, admin_token, failed["id"]) or None,
        5,
        interval=0.1,
        message="the failure in the orchestrator's log at ERROR",
    )
    assert "exit 1: ConnectionError: portal down" in logged[0]["message"] and logged[0]["level"] == "ERROR"
    listed = client.get("/api/v1/runs", params={"robot": "invoices"}, headers=bearer(admin_token)).json()["items"]
    assert listed[0]["error"] == failed["error"]


def test_an_exit_code_is_the_reason_with_the_last_error_line_when_the_robot_wrote_one(robots: RobotsApi) -> None:
    robots.make("business", [sys.executable, "-c", BUSINESS_ERROR])
    robots.make("plain", [sys.executable, "-c", "import sys; print('no luck'); sys.exit(3)"])
    business = robots.wait_run(robots.start("business")["id"], "failed", "succeeded")
    plain = robots.wait_run(robots.start("plain")["id"], "failed", "succeeded")
    assert business["error"] == "exit 3: ERROR:root:invoice 4711 is over the limit"
    assert plain["error"] == "exit 3" and plain["exit_code"] == 3


def test_a_program_that_cannot_start_says_so(robots: RobotsApi) -> None:
    robots.make("typo", ["pyhton3", "-c", "print('hello')"])
    failed = robots.wait_run(robots.start("typo")["id"], "failed", "succeeded")
    assert failed["exit_code"] == 127
    assert failed["error"] == "cannot start 'pyhton3': No such file or directory"
    assert failed["exit_meaning"] == "the program was not found"


def test_a_kill_says_who_and_a_stop_enforced_at_the_timeout_says_so(robots: RobotsApi) -> None:
    robots.make("stubborn", [sys.executable, "-c", STUBBORN], safe_stop_timeout=1)
    run = robots.start("stubborn")
    robots.wait_output(run, "up")
    robots.act(run, "stop")
    stopped = robots.wait_run(run["id"], "stopped", "killed", "failed")
    assert stopped["state"] == "stopped"
    assert stopped["error"].startswith("killed by SIGKILL at the safe-stop timeout: it did not stop within 1 s")
    assert "asked by an API token of root-admin" in stopped["error"]

    killed = robots.act(robots.start("stubborn"), "kill")
    killed = robots.wait_run(killed["id"], "killed", "failed")
    assert killed["error"].startswith("killed by an API token of root-admin (")

    robots.make("calm", [sys.executable, "-c", "import time; time.sleep(600)"], safe_stop_timeout=10)
    quiet = robots.start("calm")
    robots.act(quiet, "stop")
    assert robots.wait_run(quiet["id"], "stopped")["error"] is None  # a clean stop needs no reason
