"""Schedules against a real `robofleet serve`: the example robots, and `SchedulesApi`, the requests these tests
repeat (define a robot and a schedule, read its fires and the runs it made)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"


def counter(seconds: float | None = None) -> list[str]:
    """The example robot that counts every 0.1 s: for `seconds`, or until stopped."""
    argv = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.1"]
    return argv if seconds is None else [*argv, "--until", str(max(1, round(seconds * 10)))]


def serve_env(store_url: str) -> dict[str, str]:
    """The settings of a `robofleet serve` on the test's store (SQLite: its own file in its folder)."""
    return {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).astimezone(UTC)


class SchedulesApi:
    def __init__(self, api: httpx.Client) -> None:
        self.api = api

    def robot(self, name: str, argv: list[str], **fields: Any) -> None:
        made = self.api.post("/api/v1/robots", json={"name": name, "argv": argv, "safe_stop_timeout": 5, **fields})
        assert made.status_code == 201, made.text

    def schedule(self, name: str, trigger: dict[str, Any], target: dict[str, Any], **fields: Any) -> dict[str, Any]:
        made = self.api.post("/api/v1/schedules", json={"name": name, "trigger": trigger, "target": target, **fields})
        assert made.status_code == 201, made.text
        body: dict[str, Any] = made.json()
        return body

    def get(self, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/api/v1/schedules/{name}").json()
        return body

    def fires(self, name: str, **filters: Any) -> list[dict[str, Any]]:
        """Every fire of the schedule, oldest first."""
        page = self.api.get(f"/api/v1/schedules/{name}/fires", params={"limit": 500, **filters})
        assert page.status_code == 200, page.text
        return list(reversed(page.json()["items"]))

    def wait_fires(self, name: str, count: int, timeout: float = 20, **filters: Any) -> list[dict[str, Any]]:
        """The fires once there are `count` (of `filters`), each with its activity submitted."""

        def enough() -> list[dict[str, Any]] | None:
            found = self.fires(name, **filters)
            done = [fire for fire in found if fire["outcome"] != "fired" or fire["activity_id"] is not None]
            return found if len(done) >= count else None

        return wait_until(enough, timeout, interval=0.2, message=lambda: f"{count} fires of {name}: {self.fires(name)}")

    def runs(self, robot: str) -> list[dict[str, Any]]:
        """The robot's runs, oldest first."""
        items: list[dict[str, Any]] = self.api.get("/api/v1/runs", params={"robot": robot, "limit": 500}).json()[
            "items"
        ]
        return list(reversed(items))

    def activity(self, activity_id: int) -> dict[str, Any]:
        body: dict[str, Any] = self.api.get(f"/api/v1/activities/{activity_id}").json()
        return body
