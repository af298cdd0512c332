"""The engine in-process on both stores: schedules of the settings file applied at each start and marked from
config, a target gone makes its schedule broken (visible, firing nothing), overlap skip and queue, a fire asked
through the API, and the fence that keeps two engines from firing one planned time twice."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from robofleet.orchestrator import Orchestrator
from robofleet.schedules.models import Schedule
from robofleet.schedules.service import SchedulesService
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import create_app
from tests.conftest import MakeUser, bearer, wait_until

ECHO = {"action": "system.echo", "args": {"message": "hi"}}


def counter(seconds: float) -> list[str]:
    script = Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py"
    return [sys.executable, str(script), "--every", "0.1", "--until", str(round(seconds * 10))]


class Api:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = bearer(token)

    def post(self, path: str, body: dict[str, Any] | None = None, status: int = 201) -> dict[str, Any]:
        answer = self.client.post(path, headers=self.headers, json=body)
        assert answer.status_code == status, answer.text
        return answer.json() if answer.content else {}  # type: ignore[no-any-return]

    def get(self, path: str, **params: Any) -> Any:
        answer = self.client.get(path, headers=self.headers, params=params)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def fires(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return list(reversed(self.get(f"/api/v1/schedules/{name}/fires", limit=500, **params)["items"]))


@pytest.fixture
def api(client: TestClient, admin_token: str) -> Api:
    return Api(client, admin_token)


def test_a_schedule_whose_robot_is_gone_is_broken_and_fires_nothing(api: Api) -> None:
    api.post("/api/v1/robots", {"name": "soon-gone", "argv": counter(0.2)})
    when = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    target = {"action": "robots.start", "args": {"name": "soon-gone"}}
    api.post(
        "/api/v1/schedules", {"name": "orphan", "trigger": {"kind": "once", "at": when.isoformat()}, "target": target}
    )
    assert api.client.delete("/api/v1/robots/soon-gone", headers=api.headers).status_code == 204
    broken = wait_until(lambda: found if (found := api.get("/api/v1/schedules/orphan"))["broken"] else None, 10)
    assert "soon-gone" in broken["broken"] and api.fires("orphan") == []
    assert api.post("/api/v1/schedules/orphan/fire", status=409)["error"]["code"] == "conflict"
    # Once its robot is back, a change checks it again and it is healthy.
    api.post("/api/v1/robots", {"name": "soon-gone", "argv": counter(0.2)})
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    healed = api.client.patch(
        "/api/v1/schedules/orphan", headers=api.headers, json={"trigger": {"kind": "once", "at": later}}
    ).json()
    assert healed["broken"] is None and healed["next_fire_at"] is not None


def test_a_sweep_marks_broken_the_schedules_whose_robot_or_owner_is_gone(
    client: TestClient, api: Api, context: Orchestrator, make_user: MakeUser
) -> None:
    api.post("/api/v1/robots", {"name": "leaving", "argv": counter(0.2)})
    api.post("/api/v1/robots", {"name": "staying", "argv": counter(0.2)})
    nightly = {"kind": "cron", "expression": "0 0 3 * * *"}
    api.post("/api/v1/schedules", {"name": "of-leaving", "trigger": nightly, "target": start_of("leaving")})
    operator = Api(client, make_user("olga", ["operator"]))
    operator.post("/api/v1/schedules", {"name": "of-olga", "trigger": nightly, "target": start_of("staying")})
    api.post("/api/v1/schedules", {"name": "untouched", "trigger": nightly, "target": start_of("staying")})
    assert api.client.delete("/api/v1/robots/leaving", headers=api.headers).status_code == 204
    assert api.client.patch("/api/v1/users/olga", headers=api.headers, json={"disabled": True}).is_success
    service = context.service("schedules")
    assert isinstance(service, SchedulesService)
    client.portal.call(service.engine.sweep_broken)  # type: ignore[union-attr]
    assert api.get("/api/v1/schedules/of-leaving")["broken"] == "its robot leaving no longer exists"
    assert api.get("/api/v1/schedules/of-olga")["broken"] == "its owner olga is disabled"
    listed = {item["name"]: item["broken"] for item in api.get("/api/v1/schedules")["items"]}
    assert listed == {
        "of-leaving": "its robot leaving no longer exists",
        "of-olga": "its owner olga is disabled",
        "untouched": None,
    }


def start_of(robot: str) -> dict[str, Any]:
    return {"action": "robots.start", "args": {"name": robot}}


def test_overlap_skip_and_queue_when_the_robot_is_running(api: Api) -> None:
    api.post("/api/v1/robots", {"name": "busy", "argv": counter(2.5), "max_concurrent": 3})
    manual = api.post("/api/v1/robots/busy/start")
    target = {"action": "robots.start", "args": {"name": "busy"}}
    every = {"kind": "interval", "seconds": 1}
    api.post("/api/v1/schedules", {"name": "skipper", "trigger": every, "target": target, "overlap": "skip"})
    api.post("/api/v1/schedules", {"name": "queuer", "trigger": every, "target": target, "overlap": "queue"})
    skipped = wait_until(lambda: [f for f in api.fires("skipper") if f["outcome"] == "skipped_overlap"], 10)
    assert skipped[0]["activity_id"] is None and "busy" in skipped[0]["error"]
    queued = wait_until(lambda: [f for f in api.fires("queuer") if f["outcome"] in ("queued", "fired")], 10)[0]
    assert at(queued["planned_at"]) < at(manual["started_at"]) + timedelta(seconds=2.5)
    later = [f for f in api.fires("queuer") if f["id"] > queued["id"]]
    assert all(f["outcome"] == "skipped_overlap" and f["error"] == "a fire is queued already" for f in later), later

    def queued_fired() -> dict[str, Any] | None:
        [found] = [f for f in api.fires("queuer") if f["id"] == queued["id"]]
        return found if found["outcome"] == "fired" and found["activity_id"] else None

    fired = wait_until(queued_fired, 15)  # the manual run ended: the queued fire fires, once
    ended = api.get(f"/api/v1/runs/{manual['id']}")
    assert ended["state"] == "succeeded"
    activity = wait_until(
        lambda: (
            found if (found := api.get(f"/api/v1/activities/{fired['activity_id']}"))["state"] == "succeeded" else None
        ),
        10,
    )
    assert activity["requested_by"] == "schedule:queuer" and at(activity["created_at"]) >= at(ended["ended_at"])
    for name in ("skipper", "queuer"):
        api.post(f"/api/v1/schedules/{name}/pause", status=200)


def test_a_fire_asked_through_the_api_runs_as_the_caller(api: Api) -> None:
    made = api.post(
        "/api/v1/schedules", {"name": "later", "trigger": {"kind": "cron", "expression": "0 0 3 * * *"}, "target": ECHO}
    )
    fire = api.post("/api/v1/schedules/later/fire")
    assert fire["outcome"] == "fired" and fire["activity_id"] is not None
    activity = wait_until(
        lambda: (
            found if (found := api.get(f"/api/v1/activities/{fire['activity_id']}"))["state"] == "succeeded" else None
        ),
        10,
    )
    assert activity["requested_by"].startswith("root-admin") and activity["result"] == {"message": "hi"}
    assert api.get("/api/v1/schedules/later")["next_fire_at"] == made["next_fire_at"]  # its plan is unchanged
    assert [f["id"] for f in api.fires("later", outcome="fired")] == [fire["id"]]
    assert api.fires("later", outcome="skipped_misfire") == []
    assert api.fires("later", since=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()) == []


def test_two_engines_reading_the_same_due_fire_fire_it_once(
    client: TestClient, api: Api, context: Orchestrator
) -> None:
    api.post("/api/v1/schedules", {"name": "raced", "trigger": {"kind": "interval", "seconds": 3600}, "target": ECHO})
    api.post("/api/v1/schedules/raced/pause", status=200)  # its own engine leaves it alone
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    with context.store.transaction() as session:
        session.execute(update(Schedule).where(Schedule.name == "raced").values(next_fire_at=due, next_planned_at=due))
        row = session.query(Schedule).filter_by(name="raced").one()
    service = context.service("schedules")
    assert isinstance(service, SchedulesService)
    now = datetime.now(UTC)
    for _ in range(2):  # two engines, each with the row as it read it
        client.portal.call(service.engine.fire_due, row, [], now)  # type: ignore[union-attr]
    fires = api.fires("raced")
    assert len(fires) == 1 and at(fires[0]["planned_at"]) == due and fires[0]["activity_id"]
    echoes = [
        a for a in api.get("/api/v1/activities", action="system.echo")["items"] if a["requested_by"] == "schedule:raced"
    ]
    assert len(echoes) == 1


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).astimezone(UTC)


@pytest.fixture
def configured(settings: Settings, tmp_path: Any) -> Settings:
    robots = [{"name": "nightly-bot", "argv": counter(0.2)}]
    calendars = [{"name": "closed", "dates": ["2027-03-10"], "holidays": [{"country": "DE", "subdiv": "BY"}]}]
    schedules = [
        {
            "name": "nightly",
            "target": {"action": "robots.start", "args": {"name": "nightly-bot"}},
            "trigger": {"kind": "cron", "expression": "0 0 2 * * *"},
            "timezone": "Europe/Berlin",
            "calendars": ["closed"],
            "misfire": {"policy": "run_once", "grace_seconds": 600},
        }
    ]
    return Settings(store=settings.store.model_dump(), robots=robots, calendars=calendars, schedules=schedules)


@contextmanager
def started(configured: Settings, store: Store) -> Iterator[TestClient]:
    """An orchestrator of `configured` on `store`, started (its settings file applied) and stopped after."""
    with TestClient(create_app(Orchestrator(configured, store, ready=True))) as client:
        yield client


def test_schedules_and_calendars_of_the_settings_file_are_applied_at_each_start(
    configured: Settings, store: Store, admin_token: str
) -> None:
    shown = []
    for _ in range(2):
        with started(configured, store) as client:
            api = Api(client, admin_token)
            shown.append(api.get("/api/v1/schedules/nightly"))
            calendar = api.get("/api/v1/calendars/closed")
    assert shown[0]["from_config"] and shown[0]["owner"] == "config" and calendar["from_config"]
    assert shown[0]["misfire"] == {"policy": "run_once", "grace_seconds": 600.0}
    assert shown[1]["next_fire_at"] == shown[0]["next_fire_at"]  # its stored plan survives the restart
    assert calendar["holidays"] == [{"country": "DE", "subdiv": "BY"}]
    changed = configured.model_copy(deep=True)
    changed.schedules[0].description = "changed in the file"
    with started(changed, store) as client:
        assert Api(client, admin_token).get("/api/v1/schedules/nightly")["description"] == "changed in the file"
