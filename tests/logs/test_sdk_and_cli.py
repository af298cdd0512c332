"""The robot-side handler against a real orchestrator that is away for a while; the CLI; SSE resume over HTTP."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from robofleet.sdk import RobofleetLogHandler
from tests.conftest import ServeProcess, free_port

pytestmark = pytest.mark.slow


def cli(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "robofleet", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_sdk_handler_survives_the_orchestrator_being_down(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, port=free_port())
    for name, role in (("invoices-bot", "robot"), ("boss", "admin")):
        command = [sys.executable, "-m", "robofleet", "user", "create", name, "--role", role, "--password-stdin"]
        subprocess.run(
            command, cwd=tmp_path, env=serve.env, input="long-password\n", text=True, check=True, capture_output=True
        )
    token = cli(tmp_path, serve.env, "token", "create", "--user", "invoices-bot").stdout.strip().splitlines()[-1]
    handler = RobofleetLogHandler(
        serve.url,
        token,
        source="robot:invoices",
        run_id="run-77",
        capacity=50,
        batch_size=20,
        flush_interval=0.1,
        max_backoff=0.5,
        timeout=2,
    )
    robot = logging.getLogger("robot.invoices")
    robot.addHandler(handler)
    robot.setLevel(logging.INFO)
    try:
        started = time.monotonic()
        for n in range(80):  # the orchestrator is not running yet: nothing may block or raise
            robot.info("step %d done", n, extra={"fields": {"step": n}})
        assert time.monotonic() - started < 0.5
        assert handler.send_now(1.0) is False and handler.pending == 50 and handler.dropped == 30
        serve.start(wait="/readyz")
        assert handler.send_now(15.0) is True
        made = cli(tmp_path, serve.env, "token", "create", "--user", "boss")
        assert made.returncode == 0, made.stderr
        reader = made.stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {reader}"}
        stored = httpx.get(
            f"{serve.url}/api/v1/logs", params={"run_id": "run-77", "order": "asc", "limit": 100}, headers=headers
        ).json()["items"]
        messages = [r["message"] for r in stored]
        steps = [m for m in messages if m.startswith("step")]
        assert steps == [f"step {n} done" for n in range(30, 80)]  # the newest 50 were kept, in order
        notices = [r for r in stored if "log records were dropped" in r["message"]]
        assert len(notices) == 1 and notices[0]["message"].startswith("30 ") and notices[0]["level"] == "WARNING"
        assert stored[0]["source"] == "robot:invoices" and stored[0]["fields"]["step"] == 30
        assert handler.sent == 50
    finally:
        robot.removeHandler(handler)
        handler.close()
        serve.stop()


def test_logs_cli_and_stream_resume(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path).start(wait="/readyz")
    try:
        token = serve.token()
        env = {**serve.env, "ROBOFLEET_CLIENT__TOKEN": token}
        headers = {"Authorization": f"Bearer {token}"}
        records = [{"message": f"line {n}", "source": "robot:cli", "run_id": "r9"} for n in range(5)]
        first = httpx.post(f"{serve.url}/api/v1/logs", json={"records": records}, headers=headers).json()
        printed = cli(tmp_path, env, "logs", "--source", "robot:cli", "--limit", "3")
        assert printed.returncode == 0, printed.stderr
        assert [line.split()[-1] for line in printed.stdout.splitlines()] == ["2", "3", "4"]
        as_json = cli(tmp_path, env, "logs", "--run", "r9", "--json", "--limit", "1")
        assert json.loads(as_json.stdout)["message"] == "line 4"
        assert cli(tmp_path, env, "logs", "--level", "LOUD").returncode == 1

        with httpx.stream(
            "GET",
            f"{serve.url}/api/v1/logs/stream",
            params={"source": "robot:cli"},
            timeout=20,
            headers={**headers, "Last-Event-ID": str(first["first_id"] + 1)},
        ) as stream:
            later = [{"message": "live one", "source": "robot:cli"}, {"message": "other", "source": "robot:x"}]
            httpx.post(f"{serve.url}/api/v1/logs", json={"records": later}, headers=headers)
            got = []
            for line in stream.iter_lines():
                if line.startswith("data:") and '"message"' in line:
                    got.append(json.loads(line[5:])["message"])
                    if len(got) == 4:
                        break
        assert got == ["line 2", "line 3", "line 4", "live one"]
    finally:
        serve.stop()
