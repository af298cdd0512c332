"""Queues on both stores: the app in-process with a quick lease check, and `QueuesApi`, the requests these tests
repeat (define a queue, add items, lease and report), over a TestClient or a real server's httpx client."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from robofleet.settings.model import Settings
from tests.kit.cli import clean_environ
from tests.kit.serve import stop_process

WORKER = Path(__file__).with_name("worker.py")  # a worker process: python worker.py URL TOKEN QUEUE OUT [--hold S]


@pytest.fixture
def settings(store_url: str, tmp_path: Path) -> Settings:
    """The suite's settings, with expired leases looked for every 0.1 s so that expiry tests take a moment."""
    return Settings(
        store={"url": store_url, "data_dir": tmp_path / "data"},
        auth={"lockout_threshold": 3, "lockout_minutes": 1},
        queueing={"lease_check_seconds": 0.1, "max_payload_bytes": 4096, "max_batch": 10_000},
        server={"max_body_bytes": 16_777_216},
    )


def serve_env(store_url: str, **extra: str) -> dict[str, str]:
    """The settings of a `robofleet serve` on the test's store (SQLite: its own file in its folder)."""
    env = {"ROBOFLEET_QUEUEING__LEASE_CHECK_SECONDS": "0.2", "ROBOFLEET_SERVER__MAX_BODY_BYTES": "16777216", **extra}
    return env if store_url.startswith("sqlite") else {**env, "ROBOFLEET_STORE__URL": store_url}


@dataclass
class Worker:
    """A worker process (worker.py) and the file it notes what it leased and completed in."""

    process: subprocess.Popen[bytes]
    out: Path
    log: Path

    def lines(self) -> list[str]:
        return self.out.read_text().splitlines() if self.out.exists() else []

    def noted(self, what: str) -> list[int]:
        """The ids of the items it noted as `what` ("leased", "done", "lost"), in order."""
        return [int(line.split()[1]) for line in self.lines() if line.startswith(what + " ")]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        assert code == 0, f"worker exited with {code}:\n{self.log.read_text()}"
        return code


StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """`start_worker(url, token, queue, *options)`: a worker.py process (options: --hold S, --idle S), killed when
    the test ends however it ends."""
    started: list[Worker] = []

    def start(url: str, token: str, queue: str, *options: str) -> Worker:
        out = tmp_path / f"worker-{len(started)}.txt"
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as sink:
            command = [sys.executable, str(WORKER), url, token, queue, str(out), *options]
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=clean_environ({}))
        started.append(Worker(process, out, log))
        return started[-1]

    yield start
    for worker in started:
        stop_process(worker.process, signal.SIGKILL)


class QueuesApi:
    """Queue requests through `api` (a TestClient or an httpx.Client), answers checked."""

    def __init__(self, api: TestClient | httpx.Client, headers: dict[str, str] | None = None) -> None:
        self.api = api
        self.headers = headers or {}

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.api.request(method, f"/api/v1/queues{path}", headers=self.headers, **kwargs)

    def create(self, name: str, **fields: Any) -> dict[str, Any]:
        made = self.request("POST", "", json={"name": name, **fields})
        assert made.status_code == 201, made.text
        body: dict[str, Any] = made.json()
        return body

    def add(self, queue: str, *items: dict[str, Any]) -> dict[str, Any]:
        added = self.request("POST", f"/{queue}/items", json={"items": list(items)})
        assert added.status_code == 201, added.text
        body: dict[str, Any] = added.json()
        return body

    def next(self, queue: str, wait: float = 0) -> dict[str, Any] | None:
        leased = self.request("POST", f"/{queue}/items/next", params={"wait": wait})
        assert leased.status_code in (200, 204), leased.text
        return None if leased.status_code == 204 else dict(leased.json())

    def report(self, queue: str, item: dict[str, Any], verb: str, **body: Any) -> httpx.Response:
        """complete, fail, extend or release `item` (as leased) with its lease."""
        return self.request("POST", f"/{queue}/items/{item['id']}/{verb}", json={"lease_id": item["lease_id"], **body})

    def item(self, queue: str, item_id: int) -> dict[str, Any]:
        found = self.request("GET", f"/{queue}/items/{item_id}")
        assert found.status_code == 200, found.text
        body: dict[str, Any] = found.json()
        return body

    def items(self, queue: str, **filters: Any) -> list[dict[str, Any]]:
        page = self.request("GET", f"/{queue}/items", params={"limit": 500, **filters})
        assert page.status_code == 200, page.text
        items: list[dict[str, Any]] = page.json()["items"]
        return items

    def stats(self, queue: str) -> dict[str, Any]:
        answer = self.request("GET", f"/{queue}/stats")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body
