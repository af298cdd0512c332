"""Activities survive a crash of `robofleet serve`: queued ones run after it, running ones fail, never rerun."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import StartServe, wait_until

pytestmark = pytest.mark.slow


def finished(api: httpx.Client, activity_id: int) -> dict[str, Any] | None:
    found: dict[str, Any] = api.get(f"/api/v1/activities/{activity_id}").json()
    return found if found["state"] not in ("queued", "running") else None


def test_kill_9_while_running_then_restart(store_url: str, start_serve: StartServe) -> None:
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    serve = start_serve(env=env)
    headers = {"Authorization": f"Bearer {serve.token()}"}
    api = httpx.Client(base_url=serve.url, headers=headers, timeout=10)
    sleeper = api.post("/api/v1/activities", json={"action": "system.sleep", "args": {"seconds": 60}}).json()
    async_sleeper = api.post(
        "/api/v1/activities", json={"action": "system.sleep", "args": {"seconds": 60}, "mode": "async"}
    ).json()
    queued = api.post(
        "/api/v1/activities",
        json=[
            {"action": "system.echo", "args": {"message": f"after {n}"}, "idempotency_key": f"k{n}"} for n in range(3)
        ],
    ).json()
    wait_until(
        lambda: api.get(f"/api/v1/activities/{sleeper['ids'][0]}").json()["state"] == "running",
        10,
        message="the sleeper to run",
    )
    assert {a["state"] for a in api.get("/api/v1/activities", params={"action": "system.echo"}).json()["items"]} == {
        "queued"
    }
    serve.kill()

    serve.start(wait="/readyz")
    api = httpx.Client(base_url=serve.url, headers=headers, timeout=10)
    # On SQLite before the start is over; on PostgreSQL the leader's duty, once the lock of the replica that was
    # killed has been free for a few seconds.
    for activity_id in (sleeper["ids"][0], async_sleeper["ids"][0]):
        interrupted = wait_until(lambda activity_id=activity_id: finished(api, activity_id), 15)
        assert interrupted["state"] == "failed" and interrupted["error"]["code"] == "interrupted"
    for activity_id in queued["ids"]:
        done = wait_until(lambda activity_id=activity_id: finished(api, activity_id), 15)
        assert done["state"] == "succeeded" and done["result"]["message"].startswith("after")
    # The same idempotency keys after the restart still name the same activities.
    again = api.post(
        "/api/v1/activities",
        json=[
            {"action": "system.echo", "args": {"message": f"after {n}"}, "idempotency_key": f"k{n}"} for n in range(3)
        ],
    ).json()
    assert again["ids"] == queued["ids"]


def test_a_module_that_fails_to_import_stops_the_start(start_serve: StartServe) -> None:
    serve = start_serve(env={"ROBOFLEET_ACTIVITIES__MODULES": '["robofleet_no_such_module"]'}, wait=None)
    assert serve.process is not None
    code = serve.process.wait(timeout=30)
    assert code != 0
    assert "robofleet_no_such_module" in serve.output() and "activities.modules" in serve.output()
