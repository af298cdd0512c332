"""The queue trigger: when a queue has at least N ready items, the scheduler starts a robot up to K runs to work it
(issue 13's "queue backlog" trigger, wired once queues landed)."""

from __future__ import annotations

import time

import pytest

from tests.conftest import StartServe, wait_until
from tests.schedules.conftest import SchedulesApi, counter, serve_env

pytestmark = pytest.mark.slow
WORK = {"action": "robots.start", "args": {"name": "worker"}}


def active(api: SchedulesApi) -> list[dict[str, object]]:
    return [run for run in api.runs("worker") if run["state"] in ("starting", "running")]


def test_a_backlog_starts_the_robot_up_to_its_runs(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    client = serve.api()
    api = SchedulesApi(client)
    api.robot("worker", counter(4), max_concurrent=3)
    assert client.post("/api/v1/queues", json={"name": "inbox"}).status_code == 201
    trigger = {"kind": "queue", "queue": "inbox", "min_items": 3, "max_runs": 2, "check_seconds": 1}
    made = api.schedule("work-inbox", trigger, WORK)
    assert made["trigger"] == trigger and made["next_fire_at"] is not None

    def add(count: int) -> None:
        items = [{"payload": {"n": n}} for n in range(count)]
        assert client.post("/api/v1/queues/inbox/items", json={"items": items}).status_code in (200, 201)

    add(2)
    time.sleep(2.5)  # two ready items: below the backlog, nothing started
    assert api.runs("worker") == [] and api.fires("work-inbox") == []
    add(2)
    wait_until(lambda: len(active(api)) == 2, 10, message=lambda: str(api.fires("work-inbox")))
    time.sleep(2.5)  # later checks: two runs already, the most it may have
    assert len(api.runs("worker")) == 2
    fires = api.fires("work-inbox")
    assert [fire["outcome"] for fire in fires] == ["fired", "fired"]
    assert all(run["requested_by"] == "schedule:work-inbox" for run in api.runs("worker"))


def test_bad_queue_triggers_are_refused_with_their_field(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    client = serve.api()
    SchedulesApi(client).robot("worker", counter(1))
    assert client.post("/api/v1/queues", json={"name": "inbox"}).status_code == 201
    echo = {"action": "system.echo", "args": {"message": "x"}}
    cases = [
        ({"kind": "queue", "queue": "nope", "min_items": 1, "max_runs": 1}, WORK, "trigger.queue"),
        ({"kind": "queue", "queue": "inbox", "min_items": 0, "max_runs": 1}, WORK, "trigger.min_items"),
        ({"kind": "queue", "queue": "inbox", "min_items": 1, "max_runs": 101}, WORK, "trigger.max_runs"),
        ({"kind": "queue", "queue": "inbox", "check_seconds": 0}, WORK, "trigger.check_seconds"),
        ({"kind": "queue", "queue": "inbox"}, echo, "target.action"),
    ]
    for trigger, target, field in cases:
        answer = client.post("/api/v1/schedules", json={"name": "q", "trigger": trigger, "target": target})
        assert answer.status_code == 422 and answer.json()["error"]["details"]["field"] == field, answer.text
    assert client.get("/api/v1/schedules").json()["items"] == []
