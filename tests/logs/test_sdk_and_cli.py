"""The robot-side handler against a real orchestrator that is away for a while; the CLI; SSE resume over HTTP."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from robofleet.sdk import RobofleetLogHandler
from tests.conftest import StartServe

pytestmark = pytest.mark.slow


def test_sdk_handler_survives_the_orchestrator_being_down(start_serve: StartServe) -> None:
    serve = start_serve(start=False)
    for name, role in (("invoices-bot", "robot"), ("boss", "admin")):
        made = serve.cli("user", "create", name, "--role", role, "--password-stdin", stdin="long-password\n")
        assert made.returncode == 0, made.stderr
    token = serve.cli("token", "create", "--user", "invoices-bot").stdout.strip().splitlines()[-1]
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
        made = serve.cli("token", "create", "--user", "boss")
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


def test_logs_cli_and_stream_resume(start_serve: StartServe) -> None:
    serve = start_serve()
    token = serve.token()
    env = {"ROBOFLEET_CLIENT__TOKEN": token}
    headers = {"Authorization": f"Bearer {token}"}
    records = [{"message": f"line {n}", "source": "robot:cli", "run_id": "r9"} for n in range(5)]
    first = httpx.post(f"{serve.url}/api/v1/logs", json={"records": records}, headers=headers).json()
    printed = serve.cli("logs", "--source", "robot:cli", "--limit", "3", env=env)
    assert printed.returncode == 0, printed.stderr
    assert [line.split()[-1] for line in printed.stdout.splitlines()] == ["2", "3", "4"]
    as_json = serve.cli("logs", "--run", "r9", "--json", "--limit", "1", env=env)
    assert json.loads(as_json.stdout)["message"] == "line 4"
    assert serve.cli("logs", "--level", "LOUD", env=env).returncode == 1

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
