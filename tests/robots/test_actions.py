"""Robots and runs as actions: the scheduler, the console and outside systems act on robots through activities,
with the permission and robot scope of the matching routes."""

from __future__ import annotations

import sys
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer, wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


def call(client: TestClient, token: str, action: str, **args: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/activities", headers=bearer(token), json={"action": action, "args": args}, params={"wait": 20}
    )
    assert response.status_code == 201, response.text
    activity: dict[str, Any] = response.json()["activities"][0]
    return activity


def test_every_robot_operation_is_an_action(client: TestClient, admin_token: str) -> None:
    assert client.post("/api/v1/robots", headers=bearer(admin_token), json={"name": "a1", "argv": SLEEPER}).is_success
    started = call(client, admin_token, "robots.start", name="a1")
    assert started["state"] == "succeeded", started
    run = started["result"]
    assert run["robot"] == "a1" and run["state"] == "running"

    assert call(client, admin_token, "runs.get", id=run["id"])["result"]["pid"] == run["pid"]
    listed = call(client, admin_token, "runs.list", robot="a1", state="running")["result"]
    assert [item["id"] for item in listed["items"]] == [run["id"]]
    assert call(client, admin_token, "robots.get", name="a1")["result"]["argv"] == SLEEPER
    assert "a1" in [robot["name"] for robot in call(client, admin_token, "robots.list")["result"]["items"]]

    paused = call(client, admin_token, "robots.pause", name="a1")["result"]["runs"][0]
    assert paused["state"] == "paused"
    assert call(client, admin_token, "robots.resume", name="a1")["result"]["runs"][0]["state"] == "running"
    restarted = call(client, admin_token, "robots.restart", name="a1")["result"]
    assert restarted["id"] != run["id"] and restarted["state"] == "running"
    assert call(client, admin_token, "runs.get", id=run["id"])["result"]["state"] == "stopped"
    assert call(client, admin_token, "robots.kill", name="a1")["state"] == "succeeded"
    wait_until(lambda: call(client, admin_token, "runs.get", id=restarted["id"])["result"]["state"] == "killed")
    stopped_again = call(client, admin_token, "robots.stop", name="a1")
    assert stopped_again["state"] == "failed" and stopped_again["error"]["code"] == "conflict"  # no active run


def test_actions_keep_the_robot_scope_of_their_routes(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    for name in ("mine", "theirs"):
        body = {"name": name, "argv": SLEEPER, "tags": [name]}
        assert client.post("/api/v1/robots", headers=bearer(admin_token), json=body).is_success
    role = {"name": "mine-operator", "permissions": ["robots:*", "activities:run"], "robot_tags": ["mine"]}
    assert client.post("/api/v1/roles", headers=bearer(admin_token), json=role).is_success
    operator = make_user("scoped", ["mine-operator"])

    refused = call(client, operator, "robots.start", name="theirs")
    assert refused["state"] == "failed" and refused["error"]["code"] == "not_found"  # as unknown as no robot
    started = call(client, operator, "robots.start", name="mine")
    assert started["state"] == "succeeded"
    assert [r["name"] for r in call(client, operator, "robots.list")["result"]["items"]] == ["mine"]

    theirs = call(client, admin_token, "robots.start", name="theirs")["result"]
    assert call(client, operator, "runs.get", id=theirs["id"])["error"]["code"] == "not_found"
    assert call(client, operator, "robots.kill", name="theirs")["error"]["code"] == "not_found"
    assert [r["robot"] for r in call(client, operator, "runs.list")["result"]["items"]] == ["mine"]
    for name in ("mine", "theirs"):
        call(client, admin_token, "robots.kill", name=name)


def test_bad_arguments_are_refused_before_anything_is_queued(client: TestClient, admin_token: str) -> None:
    for args in ({"name": "no spaces allowed"}, {}, {"name": "x", "extra": 1}):
        response = client.post(
            "/api/v1/activities", headers=bearer(admin_token), json={"action": "robots.start", "args": args}
        )
        assert response.status_code == 422, response.text
    response = client.post(
        "/api/v1/activities", headers=bearer(admin_token), json={"action": "runs.list", "args": {"state": "sleeping"}}
    )
    assert response.status_code == 422 and "state" in response.json()["error"]["message"]
