"""Refusals: unknown actions, bad arguments, missing permissions, oversized lists; nothing half-queued."""

from __future__ import annotations

from fastapi.testclient import TestClient

from robofleet.activities.registry import Registry
from tests.conftest import MakeUser, bearer


def count(client: TestClient, token: str) -> int:
    return len(client.get("/api/v1/activities", params={"limit": 500}, headers=bearer(token)).json()["items"])


def test_bad_submissions_are_refused_whole(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    cases = [
        ({"action": "nope.nothing"}, 422, "nope.nothing"),
        ({"action": "system.echo", "args": {}}, 422, "system.echo: message"),
        ({"action": "system.echo", "args": {"message": "x", "colour": 1}}, 422, "colour"),
        ({"action": "system.sleep", "args": {"seconds": -1}}, 422, "system.sleep: seconds"),
        ({"action": "system.echo", "args": {"message": "x"}, "mode": "later"}, 422, "mode"),
        ({"action": "system.echo", "args": {"message": "x"}, "priority": 1}, 422, "priority"),
        (
            [{"action": "system.echo", "args": {"message": "ok"}}, {"action": "system.echo", "args": {"message": 5}}],
            422,
            "activities[1]: system.echo: message",
        ),
        ([{"action": "system.echo", "args": {"message": "x"}}] * 21, 422, "max_batch"),
        (
            {
                "batch": True,
                "activities": [
                    {"action": "system.echo", "args": {"message": "x"}, "mode": "async"},
                    {"action": "system.echo", "args": {"message": "x"}},
                ],
            },
            422,
            "same mode",
        ),
        ("just a string", 422, "activity"),
        ([], 422, ""),
    ]
    for body, status, mentioned in cases:
        response = client.post("/api/v1/activities", headers=headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert mentioned in response.json()["error"]["message"], (body, response.json())
    broken = client.post(
        "/api/v1/activities", headers={**headers, "content-type": "application/json"}, content=b'{"action": '
    )
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"
    echo = {"action": "system.echo", "args": {"message": "x"}}
    for params, field in [
        ({"wait": "soon"}, "wait"),
        ({"wait": -1}, "wait"),
        ({"wait": 301}, "wait"),
        ({"batch": "maybe"}, "batch"),
    ]:
        refused = client.post("/api/v1/activities", headers=headers, params=params, json=echo)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.json()["error"]["details"]["field"] == field and field in refused.json()["error"]["message"]
    assert count(client, admin_token) == 0


def test_a_large_list_is_audited_in_one_record(client: TestClient, admin_token: str) -> None:
    body = [{"action": "system.echo", "args": {"message": str(n)}} for n in range(20)]
    for _ in range(6):  # ids grow past the width where 50 of them would overflow the audit target column
        assert client.post("/api/v1/activities", headers=bearer(admin_token), json=body).status_code == 201
    audit = client.get("/api/v1/audit", headers=bearer(admin_token), params={"action": "activity.submit"}).json()
    last = audit["items"][0]
    assert last["details"]["count"] == 20 and ".." in last["target"] and len(last["target"]) < 255


def test_each_action_refuses_a_caller_without_its_permission(client: TestClient, make_user: MakeUser) -> None:
    # May submit activities at all, but holds none of the actions' own permissions beyond activities:*.
    client.post(
        "/api/v1/roles",
        headers=bearer(make_user("boss", ["admin"])),
        json={"name": "runner", "permissions": ["activities:*"]},
    )
    runner = make_user("runner1", ["runner"])
    registry: Registry = client.app.state.registry  # type: ignore[attr-defined]
    refused = 0
    for action in registry.search():
        if action.permission.startswith("activities:"):
            continue
        response = client.post("/api/v1/activities", headers=bearer(runner), json={"action": action.name})
        assert response.status_code == 403, (action.name, response.text)
        error = response.json()["error"]
        assert error["details"]["permission"] == action.permission and action.name in error["message"]
        refused += 1
    assert refused >= 10
    nobody = make_user("nobody", [])
    assert (
        client.post(
            "/api/v1/activities", headers=bearer(nobody), json={"action": "system.echo", "args": {"message": "x"}}
        ).status_code
        == 403
    )


def test_secrets_are_never_stored_or_shown(client: TestClient, admin_token: str) -> None:
    body = {"action": "users.create", "args": {"username": "via-activity", "password": "very-secret-pw"}}
    answer = client.post("/api/v1/activities", params={"wait": 10}, headers=bearer(admin_token), json=body).json()
    activity = answer["activities"][0]
    assert activity["state"] == "succeeded", activity
    assert activity["args"]["password"] == "********" and "very-secret-pw" not in str(answer)
    listed = client.get("/api/v1/activities", headers=bearer(admin_token)).text
    assert "very-secret-pw" not in listed
    assert client.get("/api/v1/users/via-activity", headers=bearer(admin_token)).status_code == 200


def test_actions_are_listed_with_schema_docs_and_permission(client: TestClient, admin_token: str) -> None:
    actions = client.get("/api/v1/actions", headers=bearer(admin_token)).json()
    names = [a["name"] for a in actions]
    assert {"system.echo", "system.sleep", "users.create", "roles.list", "settings.read", "test.record"} <= set(names)
    echo = next(a for a in actions if a["name"] == "system.echo")
    assert echo["permission"] == "activities:run" and "message" in echo["parameters"]["properties"]
    assert echo["summary"].startswith("Return the message")
    users_only = client.get("/api/v1/actions", params={"q": "user"}, headers=bearer(admin_token)).json()
    assert users_only and all("user" in a["name"] or "user" in a["summary"].lower() for a in users_only)
