"""GET /api/v1/runs across robots: filters by robot, state, agent, time, who or what started a run; duration and
reason in each row; paging; a clear 422 for a filter that cannot be read. On both stores, with real runs."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer, wait_until
from tests.robots.conftest import RobotsApi

SUCCEEDS = [sys.executable, "-c", "print('done')"]
FAILS = [sys.executable, "-c", "import sys; sys.exit(3)"]


def listed(client: TestClient, token: str, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/runs", params=params, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def ids(runs: list[dict[str, Any]]) -> list[int]:
    return [run["id"] for run in runs]


def test_runs_are_filtered_across_robots(
    client: TestClient, admin_token: str, make_user: MakeUser, robots: RobotsApi
) -> None:
    robots.make("good", SUCCEEDS)
    robots.make("bad", FAILS, restart={"policy": "on-failure", "backoff_seconds": 0.1, "give_up_after": 2})
    good = robots.wait_run(robots.start("good")["id"], "succeeded")
    bad = robots.wait_run(robots.start("bad")["id"], "failed")

    def restarted() -> dict[str, Any] | None:
        found = [run for run in listed(client, admin_token, robot="bad") if run["id"] != bad["id"]]
        return found[0] if found and found[0]["state"] == "failed" else None

    again = wait_until(restarted, 15, interval=0.1, message="the restart policy's run to fail too")
    assert again["origin"] == "restart" and again["requested_by"] == "restart-policy" and not again["manual"]

    every = listed(client, admin_token)
    assert ids(every) == sorted(ids(every), reverse=True) and len(every) == 3  # newest first
    assert all(run["duration_seconds"] is not None for run in every)
    assert ids(listed(client, admin_token, robot="good")) == [good["id"]]
    assert ids(listed(client, admin_token, state="failed")) == [again["id"], bad["id"]]
    assert ids(listed(client, admin_token, state=["succeeded", "killed"])) == [good["id"]]
    assert len(listed(client, admin_token, agent="local")) == 3 and listed(client, admin_token, agent="pc-01") == []
    assert ids(listed(client, admin_token, origin="restart")) == [again["id"]]
    assert ids(listed(client, admin_token, origin="token")) == [bad["id"], good["id"]]
    assert listed(client, admin_token, origin=["user", "schedule", "cli", "system"]) == []
    assert ids(listed(client, admin_token, requested_by="root-admin")) == [bad["id"], good["id"]]
    assert listed(client, admin_token, requested_by="root") == []  # a user's name, not a prefix of one
    hour = timedelta(hours=1)
    now = datetime.now(UTC)
    assert len(listed(client, admin_token, since=(now - hour).isoformat(), until=(now + hour).isoformat())) == 3
    assert listed(client, admin_token, since=(now + hour).isoformat()) == []
    failed = listed(client, admin_token, robot="bad", state="failed")
    assert {run["error"] for run in failed} == {"exit 3"}

    first = client.get("/api/v1/runs", params={"limit": 2}, headers=bearer(admin_token)).json()
    rest = client.get(
        "/api/v1/runs", params={"limit": 2, "cursor": first["next_cursor"]}, headers=bearer(admin_token)
    ).json()
    assert ids(first["items"]) + ids(rest["items"]) == ids(every) and rest["next_cursor"] is None

    role = {"name": "good-only", "permissions": ["robots:read"], "robot_globs": ["good"]}
    assert client.post("/api/v1/roles", json=role, headers=bearer(admin_token)).status_code == 201
    narrow = make_user("narrow", ["good-only"])
    assert ids(listed(client, narrow, state="failed")) == [] and ids(listed(client, narrow)) == [good["id"]]


def test_a_filter_that_cannot_be_read_is_refused_with_a_clear_422(client: TestClient, admin_token: str) -> None:
    cases = {
        "since=2026-01-01T08:00:00": "since needs a time zone",
        "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z": "until must be later than since",
        "state=sleeping": "state",
        "origin=martians": "origin",
        "robot=not a name": "robot",
        "since=yesterday": "since",
        "limit=0": "limit",
    }
    for query, expected in cases.items():
        answer = client.get(f"/api/v1/runs?{query}", headers=bearer(admin_token))
        assert answer.status_code == 422, (query, answer.text)
        assert answer.json()["error"]["code"] == "invalid"
        assert expected in answer.json()["error"]["message"], (query, answer.json())
