"""A weekly window keeps a real robot running: started when the window opens, stopped safely when it ends; a
manual stop inside the window holds until a manual start (the seed's STOPPED_MANUAL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import StartServe, wait_until
from tests.schedules.conftest import SchedulesApi, at, counter, serve_env

pytestmark = pytest.mark.slow
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def window_from_now(opens_in: float, lasts: float) -> tuple[dict[str, Any], datetime, datetime]:
    """A window trigger (UTC) opening `opens_in` seconds from now for `lasts` seconds, within today."""
    now = datetime.now(UTC)
    if (now + timedelta(seconds=opens_in + lasts + 5)).date() != now.date():
        time.sleep(opens_in + lasts + 6)  # not across midnight: wait for the new day
        now = datetime.now(UTC)
    start = (now + timedelta(seconds=opens_in)).replace(microsecond=0)
    end = start + timedelta(seconds=lasts)
    trigger = {
        "kind": "window",
        "days": [DAYS[start.weekday()]],
        "start": f"{start:%H:%M:%S}",
        "end": f"{end:%H:%M:%S}",
    }
    return trigger, start, end


def run_state(api: SchedulesApi, robot: str, state: str) -> dict[str, Any] | None:
    runs = [run for run in api.runs(robot) if run["state"] == state]
    return runs[-1] if runs else None


def test_a_window_starts_a_real_robot_and_stops_it_at_its_end(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = SchedulesApi(serve.api())
    api.robot("office", counter())
    trigger, start, end = window_from_now(3, 6)
    made = api.schedule("office-hours", trigger, {"action": "robots.start", "args": {"name": "office"}})
    assert at(made["next_fire_at"]) == start
    running = wait_until(lambda: run_state(api, "office", "running"), 15)
    assert running["requested_by"] == "schedule:office-hours" and at(running["started_at"]) >= start
    assert at(api.get("office-hours")["window_end"]) == end
    stopped = wait_until(lambda: run_state(api, "office", "stopped"), 20)
    assert stopped["id"] == running["id"] and at(stopped["ended_at"]) >= end
    assert any(step["state"] == "stopping" and step["by"] == "schedule:office-hours" for step in stopped["transitions"])
    fires = api.wait_fires("office-hours", 2)
    assert [(fire["action"], at(fire["planned_at"])) for fire in fires] == [
        ("robots.start", start),
        ("robots.stop", end),
    ]
    after = api.get("office-hours")
    assert after["window_end"] is None and at(after["next_fire_at"]) >= start + timedelta(days=1)
    time.sleep(3)
    assert len(api.runs("office")) == 1  # not started again after its window


def test_a_manual_stop_inside_the_window_holds_until_a_manual_start(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    client = serve.api()
    api = SchedulesApi(client)
    api.robot("desk", counter())
    trigger, _start, end = window_from_now(2, 16)
    api.schedule("desk-hours", trigger, {"action": "robots.start", "args": {"name": "desk"}})
    first = wait_until(lambda: run_state(api, "desk", "running"), 15)
    assert client.post(f"/api/v1/runs/{first['id']}/stop").status_code == 200
    wait_until(lambda: run_state(api, "desk", "stopped"), 15)
    time.sleep(4)  # the window is still open: the scheduler would have started it again by now
    assert [run["id"] for run in api.runs("desk")] == [first["id"]]
    manual = client.post("/api/v1/robots/desk/start").json()
    assert manual["state"] == "running" and datetime.now(UTC) < end
    stopped = wait_until(
        lambda: found if (found := client.get(f"/api/v1/runs/{manual['id']}").json())["state"] == "stopped" else None,
        25,
    )
    assert any(step["by"] == "schedule:desk-hours" for step in stopped["transitions"] if step["state"] == "stopping")
    assert len(api.runs("desk")) == 2


def test_a_robot_that_ends_inside_its_window_is_started_again(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = SchedulesApi(serve.api())
    api.robot("short", counter(0.5))
    trigger, _start, end = window_from_now(2, 10)
    api.schedule("keep-short", trigger, {"action": "robots.start", "args": {"name": "short"}})
    runs = wait_until(lambda: found if len(found := api.runs("short")) >= 2 else None, 15)
    assert all(run["requested_by"] == "schedule:keep-short" for run in runs)
    time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 4)
    count = len(api.runs("short"))
    time.sleep(3)
    assert len(api.runs("short")) == count  # the window is over: no more starts


def test_pausing_a_window_schedule_inside_its_window_stops_its_robot(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    client = serve.api()
    api = SchedulesApi(client)
    api.robot("clerk", counter())
    trigger, _start, end = window_from_now(2, 40)
    api.schedule("clerk-hours", trigger, {"action": "robots.start", "args": {"name": "clerk"}})
    first = wait_until(lambda: run_state(api, "clerk", "running"), 15)
    paused = client.post("/api/v1/schedules/clerk-hours/pause")
    assert paused.status_code == 200, paused.text
    stopped = wait_until(lambda: run_state(api, "clerk", "stopped"), 15)
    assert stopped["id"] == first["id"]
    assert any(step["by"] == "schedule:clerk-hours" for step in stopped["transitions"] if step["state"] == "stopping")
    assert api.get("clerk-hours")["window_end"] is None
    time.sleep(3)  # paused: the window does not start it again
    assert len(api.runs("clerk")) == 1
    # Resumed inside the window: the robot is kept running again.
    assert client.post("/api/v1/schedules/clerk-hours/resume").status_code == 200
    again = wait_until(lambda: run_state(api, "clerk", "running"), 15, message=lambda: f"{api.fires('clerk-hours')}")
    assert again["id"] != first["id"] and datetime.now(UTC) < end
    # Disabled inside the window: the same as paused.
    assert client.patch("/api/v1/schedules/clerk-hours", json={"enabled": False}).status_code == 200
    wait_until(lambda: None if run_state(api, "clerk", "running") else True, 15)
