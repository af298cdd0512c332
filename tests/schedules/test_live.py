"""The schedules' live stream: each fire written reaches `/api/v1/schedules-stream` as a `fire` event (what the
panel's list refreshes on), only for schedules of robots the caller may see; and previews of unsaved triggers."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.auth.test_streams_end_with_credentials import Watcher
from tests.conftest import StartServe, wait_until
from tests.schedules.conftest import SchedulesApi, counter, serve_env

pytestmark = pytest.mark.slow


def fire_events(watcher: Watcher) -> list[dict[str, object]]:
    """The data of the `fire` events the watcher got (a `changed` event has none)."""
    data = [json.loads(line[len("data: ") :]) for line in watcher.lines if line.startswith("data: {")]
    return [event for event in data if event]


def test_each_fire_reaches_the_stream_of_those_who_may_see_its_robot(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    admin = serve.api()
    api = SchedulesApi(admin)
    api.robot("billing-1", counter(0.3))
    api.robot("hr-1", counter(0.3))
    role = {"name": "billing-view", "permissions": ["robots:read", "schedules:read"], "robot_globs": ["billing-*"]}
    assert admin.post("/api/v1/roles", json=role).is_success
    assert admin.post(
        "/api/v1/users", json={"username": "bill", "password": "pw-bill-12345", "roles": ["billing-view"]}
    )
    token = admin.post("/api/v1/tokens", json={"user": "bill"}).json()["token"]
    with httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as narrowed:
        everything, billing = Watcher(admin, "/api/v1/schedules-stream"), Watcher(narrowed, "/api/v1/schedules-stream")
        every = {"kind": "interval", "seconds": 1}
        api.schedule("bill-often", every, {"action": "robots.start", "args": {"name": "billing-1"}}, overlap="parallel")
        api.schedule("hr-often", every, {"action": "robots.start", "args": {"name": "hr-1"}}, overlap="parallel")

        def both_fired() -> list[dict[str, object]] | None:
            found = fire_events(everything)
            return found if {event["schedule"] for event in found} >= {"bill-often", "hr-often"} else None

        seen = wait_until(both_fired, 15, message=lambda: str(everything.lines[-5:]))
        fired = [event for event in seen if event["outcome"] == "fired"]
        assert fired and all(isinstance(event["activity_id"], int) for event in fired)
        assert "robots" not in seen[0]  # the hub's routing detail is not sent
        stored = {fire["id"] for fire in api.fires("bill-often")}
        assert {event["id"] for event in seen if event["schedule"] == "bill-often"} <= stored
        time.sleep(1.5)
        assert {event["schedule"] for event in fire_events(billing)} == {"bill-often"}


def test_a_trigger_is_previewed_before_it_is_saved(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    admin = serve.api()
    calendar = {"name": "xmas", "dates": ["2027-12-24", "2027-12-27"]}
    assert admin.post("/api/v1/calendars", json=calendar).status_code == 201
    body = {
        "trigger": {"kind": "cron", "expression": "0 30 7 * * mon-fri"},
        "timezone": "Europe/Berlin",
        "calendars": ["xmas"],
        "count": 500,
    }
    answer = admin.post("/api/v1/schedules/preview", json=body)
    assert answer.status_code == 200, answer.text
    fires = answer.json()["fires"]
    assert len(fires) == 500 and all(fire.endswith(("06:30:00Z", "05:30:00Z")) for fire in fires)
    days = {fire[:10] for fire in fires}
    assert "2027-12-24" not in days and "2027-12-27" not in days and "2027-12-23" in days
    assert admin.get("/api/v1/schedules").json()["items"] == []  # nothing saved
    for bad, field in [
        ({**body, "trigger": {"kind": "cron", "expression": "61 * * * * *"}}, "trigger.expression"),
        ({**body, "timezone": "Mars/Olympus"}, "timezone"),
        ({**body, "calendars": ["nope"]}, "calendars"),
    ]:
        refused = admin.post("/api/v1/schedules/preview", json=bad)
        assert refused.status_code == 422 and refused.json()["error"]["details"]["field"] == field, refused.text
    assert admin.post("/api/v1/schedules/preview", json={**body, "count": 501}).status_code == 422
