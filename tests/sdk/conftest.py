"""Robots that work queues through the SDK, run by a real `robofleet serve` as its runs, each with its own run
token: the example invoice robots, and `Fleet`, the requests these tests repeat (define a queue, start workers and
dispatchers, wait for their runs, read what became of each item)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServeProcess, StartServe, wait_until
from tests.kit.cli import clean_environ
from tests.queues.conftest import QueuesApi, serve_env
from tests.robots.conftest import RobotsApi

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"
WORKER = [sys.executable, str(EXAMPLES / "invoice_worker.py")]
DISPATCHER = [sys.executable, str(EXAMPLES / "invoice_dispatcher.py")]
ENDED = ("succeeded", "failed", "stopped", "killed", "lost")


@dataclass
class Fleet:
    """A real serve (leases checked every 0.2 s), its queues and robots through an admin's API."""

    serve: ServeProcess
    token: str
    queues: QueuesApi
    robots: RobotsApi

    def workers(self, *args: str, copies: int = 1, name: str = "worker") -> list[dict[str, Any]]:
        """`copies` runs of invoice_worker.py with `args`, started together; their runs."""
        self.robots.make(name, [*WORKER, *args], max_concurrent=copies, safe_stop_timeout=15)
        return [self.robots.start(name) for _ in range(copies)]

    def dispatch(self, *args: str, name: str = "dispatcher") -> dict[str, Any]:
        """A run of invoice_dispatcher.py with `args`, once it succeeded."""
        self.robots.make(name, [*DISPATCHER, *args])
        return self.ended(self.robots.start(name), "succeeded")

    def ended(self, run: dict[str, Any], state: str, seconds: float = 30) -> dict[str, Any]:
        """The run once it ended; fails, showing its output, unless it ended `state` with exit code 0."""
        ended = self.robots.wait_run(run["id"], *ENDED, seconds=seconds)
        assert (ended["state"], ended["exit_code"]) == (state, 0), f"{ended}\n" + "\n".join(self.robots.output(run))
        return ended

    def said(self, run: dict[str, Any], *fragments: str, seconds: float = 10) -> list[str]:
        """The run's output once each of `fragments` is in one of its lines; fails after `seconds`, showing it."""

        def found() -> list[str] | None:
            lines = self.robots.output(run)
            return lines if all(any(part in line for line in lines) for part in fragments) else None

        return wait_until(found, seconds, message=lambda: f"{fragments} in {self.robots.output(run)}")

    def events(self, queue: str, item_id: int) -> list[str]:
        """The item's history, the event of each entry, oldest first."""
        return [entry["event"] for entry in self.queues.item(queue, item_id)["history"]]

    def in_progress(self, queue: str) -> list[dict[str, Any]]:
        return self.queues.items(queue, state="in_progress")


@pytest.fixture
def fleet(start_serve: StartServe, store_url: str) -> Fleet:
    serve = start_serve(env=serve_env(store_url))
    token = serve.token()
    api = serve.api(token, timeout=30)
    return Fleet(serve, token, QueuesApi(api), RobotsApi(api, wait_seconds=30, output_seconds=15))


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """`code` in a Python process of its own, with this environment less its ROBOFLEET_* variables, plus `env`."""
    return subprocess.run(
        [sys.executable, "-c", code], env=clean_environ(env), capture_output=True, text=True, timeout=timeout
    )
