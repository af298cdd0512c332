"""Robots and runs through the REST API, for the tests of tests/robots: the example robots, and `RobotsApi`, the
requests these tests repeat (define a robot, start it, wait for a run's state or output)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"
COUNTER = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.05"]
STEPWISE = [sys.executable, str(EXAMPLES / "stepwise.py")]


class RobotsApi:
    """Robots and runs through one client: a TestClient of the app, or an httpx.Client of a real serve, sending
    `headers` with each request. `wait_seconds` and `output_seconds` are how long `wait_run` and `wait_output`
    wait when not told."""

    def __init__(
        self,
        api: httpx.Client,
        headers: dict[str, str] | None = None,
        *,
        wait_seconds: float = 15,
        output_seconds: float = 15,
    ) -> None:
        self.api = api
        self.headers = headers or {}
        self.wait_seconds = wait_seconds
        self.output_seconds = output_seconds

    def make(self, name: str, argv: list[str], **fields: Any) -> dict[str, Any]:
        """Defines robot `name`; fails unless the API answers 201."""
        made = self.api.post("/api/v1/robots", headers=self.headers, json={"name": name, "argv": argv, **fields})
        assert made.status_code == 201, made.text
        return made.json()  # type: ignore[no-any-return]

    def start(self, name: str) -> dict[str, Any]:
        """Starts robot `name`; its new run, or a failure unless the API answers 201."""
        run = self.api.post(f"/api/v1/robots/{name}/start", headers=self.headers)
        assert run.status_code == 201, run.text
        return run.json()  # type: ignore[no-any-return]

    def act(self, run: dict[str, Any], action: str) -> dict[str, Any]:
        """POSTs `action` (pause, resume, stop, kill) to the run; the run, or a failure unless it answers 200."""
        answer = self.api.post(f"/api/v1/runs/{run['id']}/{action}", headers=self.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    def run(self, run_id: int) -> dict[str, Any]:
        return self.api.get(f"/api/v1/runs/{run_id}", headers=self.headers).json()  # type: ignore[no-any-return]

    def wait_run(self, run_id: int, *states: str, seconds: float | None = None) -> dict[str, Any]:
        """The run once in one of `states`; fails after `seconds` (`wait_seconds` by default)."""
        last: dict[str, Any] = {}

        def reached() -> dict[str, Any] | None:
            last.update(self.run(run_id))
            return dict(last) if last["state"] in states else None

        return wait_until(
            reached,
            self.wait_seconds if seconds is None else seconds,
            message=lambda: f"run {run_id} to be {' or '.join(states)}; it stayed {last.get('state')}",
        )

    def output(self, run: dict[str, Any]) -> list[str]:
        """The messages the run's robot wrote, oldest first (500 at most)."""
        params = {"run_id": str(run["id"]), "source": f"robot:{run['robot']}", "order": "asc", "limit": 500}
        items = self.api.get("/api/v1/logs", params=params, headers=self.headers).json()["items"]
        return [item["message"] for item in items]

    def wait_output(self, run: dict[str, Any], line: str, seconds: float | None = None) -> list[str]:
        """The run's output once it holds `line`; fails after `seconds` (`output_seconds` by default), showing the
        output so far."""
        return wait_until(
            lambda: lines if line in (lines := self.output(run)) else None,
            self.output_seconds if seconds is None else seconds,
            message=lambda: f"{line!r} in the output of run {run['id']}: {self.output(run)}",
        )


def someone(api: httpx.Client, name: str, permissions: list[str], *, robot_globs: tuple[str, ...] = ()) -> str:
    """A token of a new user `name` whose one role (also `name`) grants `permissions`, narrowed to `robot_globs`;
    made through the API by `api`'s administrator."""
    role = {"name": name, "permissions": permissions, "robot_globs": list(robot_globs)}
    assert api.post("/api/v1/roles", json=role).status_code == 201
    user = {"username": name, "password": f"{name}-password", "roles": [name]}
    assert api.post("/api/v1/users", json=user).status_code == 201
    made = api.post("/api/v1/tokens", json={"user": name})
    assert made.status_code == 201, made.text
    return str(made.json()["token"])


def serve_env(store_url: str) -> dict[str, str]:
    """The settings of a `robofleet serve` on the test's store (SQLite: its own file in its folder)."""
    return {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}


@pytest.fixture
def robots(client: TestClient, admin_token: str) -> RobotsApi:
    """`RobotsApi` of the in-process app (`client`), as its administrator."""
    return RobotsApi(client, bearer(admin_token), wait_seconds=15, output_seconds=10)
