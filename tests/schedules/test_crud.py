"""Schedules and calendars through the REST API on both stores: created, read, changed, paused, deleted, every
change audited; bad input refused with its field and reason, nothing half-saved."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def robot(client: TestClient, token: str, name: str, **fields: Any) -> None:
    made = client.post("/api/v1/robots", headers=bearer(token), json={"name": name, "argv": SLEEPER, **fields})
    assert made.status_code == 201, made.text


def schedule(name: str, robot_name: str = "r1", **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "target": {"action": "robots.start", "args": {"name": robot_name}},
        "trigger": {"kind": "cron", "expression": "0 30 7 * * mon-fri"},
        "timezone": "Europe/Berlin",
        **fields,
    }


def test_a_schedule_is_created_read_changed_paused_and_deleted(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    robot(client, admin_token, "r1")
    made = client.post("/api/v1/schedules", headers=headers, json=schedule("morning", tags=["daily"]))
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["target"] == {"action": "robots.start", "args": {"name": "r1"}}
    assert body["misfire"] == {"policy": "skip", "grace_seconds": 60.0} and body["overlap"] == "skip"
    next_fire = datetime.fromisoformat(body["next_fire_at"])
    local = next_fire.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute, local.second) == (7, 30, 0) and local.weekday() < 5
    assert body["owner"] == "root-admin" and body["broken"] is None and body["paused"] is False

    assert client.get("/api/v1/schedules/morning", headers=headers).json()["name"] == "morning"
    listed = client.get("/api/v1/schedules", headers=headers, params={"limit": 1}).json()
    assert [item["name"] for item in listed["items"]] == ["morning"]

    preview = client.get("/api/v1/schedules/morning/preview", headers=headers, params={"count": 5}).json()["fires"]
    assert len(preview) == 5
    times = [datetime.fromisoformat(at) for at in preview]
    assert times == sorted(times) and times[0] == next_fire

    changed = client.patch(
        "/api/v1/schedules/morning", headers=headers, json={"trigger": {"kind": "interval", "seconds": 3600}}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["trigger"]["kind"] == "interval" and changed.json()["tags"] == ["daily"]

    paused = client.post("/api/v1/schedules/morning/pause", headers=headers).json()
    assert paused["paused"] is True
    assert client.post("/api/v1/schedules/morning/resume", headers=headers).json()["paused"] is False

    now = datetime.now(UTC)
    planned = client.get(
        "/api/v1/schedules/calendar",
        headers=headers,
        params={"from": now.isoformat(), "to": (now + timedelta(hours=5)).isoformat()},
    ).json()
    assert [fire["schedule"] for fire in planned["fires"]] == ["morning"] * 5 and not planned["truncated"]

    assert client.delete("/api/v1/schedules/morning", headers=headers).status_code == 204
    assert client.get("/api/v1/schedules/morning", headers=headers).status_code == 404
    audit = client.get("/api/v1/audit", headers=headers, params={"target": "morning"}).json()["items"]
    assert {"schedule.create", "schedule.update", "schedule.pause", "schedule.resume", "schedule.delete"} <= {
        record["action"] for record in audit
    }


def test_calendars_exclude_days_from_the_preview(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    robot(client, admin_token, "r1")
    closed = date(2027, 3, 10)  # a Wednesday, no public holiday in Bavaria
    made = client.post(
        "/api/v1/calendars",
        headers=headers,
        json={"name": "closed", "dates": [closed.isoformat()], "holidays": [{"country": "DE", "subdiv": "BY"}]},
    )
    assert made.status_code == 201, made.text
    body = schedule("daily", trigger={"kind": "cron", "expression": "0 0 12 * * *"}, timezone="UTC")
    assert client.post("/api/v1/schedules", headers=headers, json={**body, "calendars": ["closed"]}).is_success
    fires = client.get("/api/v1/schedules/daily/preview", headers=headers, params={"count": 200}).json()["fires"]
    days = {datetime.fromisoformat(at).date() for at in fires}
    assert closed not in days and date(2027, 3, 9) in days and date(2027, 3, 11) in days
    assert date(2027, 1, 6) not in days  # Epiphany, a public holiday in Bavaria
    assert client.delete("/api/v1/calendars/closed", headers=headers).status_code == 409  # in use
    assert client.patch("/api/v1/calendars/closed", headers=headers, json={"dates": []}).is_success
    fires = client.get("/api/v1/schedules/daily/preview", headers=headers, params={"count": 200}).json()["fires"]
    assert closed in {datetime.fromisoformat(at).date() for at in fires}


def refusal(client: TestClient, token: str, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    answer = client.post("/api/v1/schedules", headers=bearer(token), json=body)
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    return error


def test_bad_schedules_are_refused_with_their_field_and_nothing_is_saved(client: TestClient, admin_token: str) -> None:
    robot(client, admin_token, "r1")
    robot(client, admin_token, "r2")
    cases = {
        "trigger.expression": schedule("b1", trigger={"kind": "cron", "expression": "not a cron"}),
        "timezone": schedule("b2", timezone="Mars/Olympus"),
        "calendars": schedule("b3", calendars=["nope"]),
        "trigger.end": schedule("b4", trigger={"kind": "window", "days": ["mon"], "start": "18:00", "end": "09:00"}),
        "target.args.name": schedule("b5", robot_name="ghost"),
        "target.action": {**schedule("b6"), "target": {"action": "no.such", "args": {}}},
        "target.args.seconds": {**schedule("b7"), "target": {"action": "system.sleep", "args": {"seconds": "x"}}},
        "trigger.robot": {**schedule("b8"), "trigger": {"kind": "run_event", "robot": "ghost", "on": "succeeded"}},
        "trigger.at": schedule("b9", trigger={"kind": "once", "at": "2020-01-01T09:00:00Z"}),
    }
    for reserved in ("calendar", "calendars", "timeline", "rows", "preview"):
        assert refusal(client, admin_token, schedule(reserved))["details"][0]["field"] == "name"
    for field, body in cases.items():
        error = refusal(client, admin_token, body)
        assert error["details"]["field"] == field, (field, error)
        assert error["details"]["reason"] and error["message"].startswith(field), error
    # A chain A → B, then B → A would come back to A.
    chain = {"kind": "run_event", "robot": "r1", "on": "succeeded"}
    assert client.post("/api/v1/schedules", headers=bearer(admin_token), json=schedule("ab", "r2", trigger=chain))
    back = schedule("ba", "r1", trigger={"kind": "run_event", "robot": "r2", "on": "ended"})
    error = refusal(client, admin_token, back)
    assert error["code"] == "cycle" and error["details"]["field"] == "trigger.robot"
    loop = schedule("aa", "r1", trigger={"kind": "run_event", "robot": "r1", "on": "failed"})
    assert refusal(client, admin_token, loop)["code"] == "cycle"
    names = [item["name"] for item in client.get("/api/v1/schedules", headers=bearer(admin_token)).json()["items"]]
    assert names == ["ab"]
    failed = client.get("/api/v1/audit", headers=bearer(admin_token), params={"target": "ba"}).json()["items"]
    assert [record["outcome"] for record in failed] == ["failed"]


def test_a_narrowed_operator_schedules_only_what_it_may_do(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    robot(client, admin_token, "billing-1")
    robot(client, admin_token, "hr-1")
    role = {"name": "billing-ops", "permissions": ["robots:*", "schedules:*"], "robot_globs": ["billing-*"]}
    assert client.post("/api/v1/roles", headers=bearer(admin_token), json=role).is_success
    narrowed = make_user("bill", ["billing-ops"])
    assert client.post("/api/v1/schedules", headers=bearer(narrowed), json=schedule("s1", "billing-1")).is_success
    # Another robot is as unknown as none; an action it lacks is refused.
    assert refusal(client, narrowed, schedule("s2", "hr-1"))["details"]["field"] == "target.args.name"
    echo = {**schedule("s3"), "target": {"action": "system.echo", "args": {"message": "hi"}}}
    assert refusal(client, narrowed, echo, 403)["code"] == "forbidden"
    # An admin's schedule of hr-1 is hidden from it, and may not be fired, changed or deleted by it.
    assert client.post("/api/v1/schedules", headers=bearer(admin_token), json=schedule("hr", "hr-1")).is_success
    names = [item["name"] for item in client.get("/api/v1/schedules", headers=bearer(narrowed)).json()["items"]]
    assert names == ["s1"]
    for method, path in [("POST", "/fire"), ("POST", "/pause"), ("DELETE", ""), ("GET", "")]:
        assert client.request(method, f"/api/v1/schedules/hr{path}", headers=bearer(narrowed)).status_code == 404
    viewer = make_user("vic", ["viewer"])
    assert refusal(client, viewer, schedule("s4", "billing-1"), 403)["code"] == "forbidden"


def test_schedules_are_actions_with_the_same_permissions(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    robot(client, admin_token, "r1")

    def call(token: str, action: str, **args: Any) -> dict[str, Any]:
        answer = client.post(
            "/api/v1/activities",
            headers=bearer(token),
            json={"action": action, "args": args},
            params={"wait": 20},
        )
        assert answer.status_code in (201, 403), answer.text
        return answer.json() if answer.status_code == 403 else answer.json()["activities"][0]  # type: ignore[no-any-return]

    made = call(admin_token, "schedules.create", **schedule("act"))
    assert made["state"] == "succeeded", made
    assert call(admin_token, "schedules.get", name="act")["result"]["name"] == "act"
    assert len(call(admin_token, "schedules.preview", name="act", count=3)["result"]["fires"]) == 3
    assert call(admin_token, "schedules.pause", name="act")["result"]["paused"] is True
    assert call(admin_token, "schedules.resume", name="act")["result"]["paused"] is False
    assert call(admin_token, "schedules.update", name="act", description="x")["result"]["description"] == "x"
    assert [item["name"] for item in call(admin_token, "schedules.list")["result"]["items"]] == ["act"]
    viewer = make_user("vic", ["viewer", "operator"])
    assert call(viewer, "schedules.get", name="act")["state"] == "succeeded"
    only_viewer = make_user("val", ["viewer"])
    assert call(only_viewer, "schedules.delete", name="act")["error"]["code"] == "forbidden"
    assert call(admin_token, "schedules.delete", name="act")["state"] == "succeeded"
