"""A robot that logs through logging's stream handler (stderr) and the SDK's handler at once, run by a real serve on
both stores: each record is stored once, the SDK's copy with its fields; what it prints and the traceback it dies
of are its output, the traceback one ERROR record; the README's `robofleet logs --level WARNING` shows no INFO."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServe, wait_until
from tests.robots.conftest import RobotsApi, serve_env

pytestmark = pytest.mark.slow
ROBOT = Path(__file__).resolve().parents[2] / "examples" / "robots" / "logs_both_ways.py"


def test_each_record_is_stored_once(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = serve.api()
    robots = RobotsApi(api, wait_seconds=30)
    robots.make("both", [sys.executable, str(ROBOT), "--crash"])
    run = robots.wait_run(robots.start("both")["id"], "failed")

    def stored() -> list[dict[str, Any]]:
        params = {"run_id": str(run["id"]), "order": "asc", "limit": 500}
        return api.get("/api/v1/logs", params=params).json()["items"]  # type: ignore[no-any-return]

    def complete() -> list[dict[str, Any]] | None:
        found = stored()
        messages = " ".join(r["message"] for r in found)
        return found if "ConnectionError: portal down" in messages and "invoice 8 failed" in messages else None

    wait_until(complete, 20, interval=0.2, message=stored)
    time.sleep(1.5)  # a second copy of any record would have come by now (the SDK sends every second)
    records = stored()
    firsts = Counter(r["message"].splitlines()[0] for r in records)
    assert all(count == 1 for count in firsts.values()), firsts

    by_message = {r["message"].splitlines()[0]: r for r in records}
    for step in (1, 2, 3):
        record = by_message[f"step {step} of 3"]  # the SDK's copy: its own message, level and fields
        assert record["level"] == "INFO" and record["fields"]["logger"] == "invoices"
        assert record["fields"]["step"] == step
    assert by_message["portal slow: retrying"]["level"] == "WARNING"
    assert by_message["invoice 7 read:"]["message"] == "invoice 7 read:\n  total 120.00\n  due 2026-12-31"
    logged = by_message["invoice 8 failed"]
    assert logged["level"] == "ERROR" and logged["message"].endswith("ConnectionError: portal closed the connection")
    assert by_message["portal session opened"]["fields"]["stream"] == "stdout"
    crash = by_message["Traceback (most recent call last):"]
    assert crash["level"] == "ERROR" and crash["fields"]["stream"] == "stderr"
    assert crash["message"].endswith("\nConnectionError: portal down")
    assert not [r for r in records if r["fields"].get("stream") == "stderr" and "step" in r["message"]]

    printed = serve.cli(
        "logs", "--source", "robot:*", "--level", "WARNING", env={"ROBOFLEET_CLIENT__TOKEN": serve.token()}
    )
    assert printed.returncode == 0, printed.stderr
    assert "portal slow: retrying" in printed.stdout and "ConnectionError: portal down" in printed.stdout
    assert " INFO " not in printed.stdout and "step 1 of 3" not in printed.stdout
