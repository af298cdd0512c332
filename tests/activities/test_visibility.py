"""What an activity asked and answered is shown to its requester and to holders of its action's permission only;
cancelling one needs the same (findings 7 and 16). On both stores."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer, wait_until


def submit(client: TestClient, token: str, body: dict[str, Any], wait: float = 0) -> dict[str, Any]:
    answer = client.post("/api/v1/activities", headers=bearer(token), params={"wait": wait}, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["activities"][0]


def test_activity_args_and_results_need_the_actions_permission(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    listed_users = submit(client, admin_token, {"action": "users.list"}, wait=10)
    assert listed_users["state"] == "succeeded" and listed_users["result"]
    created = submit(
        client, admin_token, {"action": "users.create", "args": {"username": "zed", "password": "p4ssword-zed"}}, 10
    )
    viewer = make_user("vio", ["viewer"])
    own = submit(client, make_user("opi", ["operator"]), {"action": "system.echo", "args": {"message": "mine"}}, 10)

    items = {item["id"]: item for item in client.get("/api/v1/activities", headers=bearer(viewer)).json()["items"]}
    for hidden in (listed_users["id"], created["id"], own["id"]):
        assert items[hidden]["result"] is None and "withheld" in items[hidden]["args"], items[hidden]
    one = client.get(f"/api/v1/activities/{listed_users['id']}", headers=bearer(viewer)).json()
    assert one["result"] is None and "zed" not in str(one)
    waited = client.get(f"/api/v1/activities/{listed_users['id']}", headers=bearer(viewer), params={"wait": 1}).json()
    assert waited["result"] is None
    # The requester sees its own; the admin, who holds every permission, sees all.
    operator_view = client.get("/api/v1/activities", headers=bearer(make_user("opo", ["operator"])))
    assert all(item["result"] is None for item in operator_view.json()["items"] if item["action"].startswith("users."))
    admin_items = {i["id"]: i for i in client.get("/api/v1/activities", headers=bearer(admin_token)).json()["items"]}
    assert admin_items[listed_users["id"]]["result"] and admin_items[own["id"]]["args"] == {"message": "mine"}


def test_only_the_requester_or_a_holder_of_the_permission_cancels(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    operator = make_user("oli", ["operator"])
    blocker = submit(client, admin_token, {"action": "test.record", "args": {"seq": 1, "seconds": 1.5}})
    wait_until(
        lambda: (
            client.get(f"/api/v1/activities/{blocker['id']}", headers=bearer(admin_token)).json()["state"] == "running"
        ),
        5,
        interval=0.01,
        message="the blocker to run",
    )
    admins = submit(client, admin_token, {"action": "users.update", "args": {"username": "oli", "disabled": True}})
    mine = submit(client, operator, {"action": "test.record", "args": {"seq": 2}})
    refused = client.post(f"/api/v1/activities/{admins['id']}/cancel", headers=bearer(operator))
    assert refused.status_code == 403 and "own" in refused.json()["error"]["message"]
    assert client.post(f"/api/v1/activities/{mine['id']}/cancel", headers=bearer(operator)).status_code == 200
    audit = client.get(
        "/api/v1/audit", headers=bearer(admin_token), params={"action": "activity.cancel", "outcome": "denied"}
    ).json()["items"]
    assert audit and audit[0]["target"] == str(admins["id"])
    assert client.post(f"/api/v1/activities/{admins['id']}/cancel", headers=bearer(admin_token)).status_code == 200


def test_a_reader_narrowed_to_some_robots_sees_only_their_activities(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    for name in ("billing-a", "hr-payroll"):
        made = client.post("/api/v1/robots", headers=bearer(admin_token), json={"name": name, "argv": ["true"]})
        assert made.status_code == 201, made.text
    hr = submit(client, admin_token, {"action": "robots.get", "args": {"name": "hr-payroll"}}, 10)
    billing = submit(client, admin_token, {"action": "robots.get", "args": {"name": "billing-a"}}, 10)
    listed = submit(client, admin_token, {"action": "robots.list"}, 10)
    failed = submit(
        client, admin_token, {"action": "users.create", "args": {"username": "root-admin", "password": "x" * 12}}, 10
    )
    assert hr["result"]["name"] == "hr-payroll" and failed["state"] == "failed"
    role = {"name": "billing-ops", "permissions": ["robots:*", "activities:read"], "robot_globs": ["billing-*"]}
    assert client.post("/api/v1/roles", headers=bearer(admin_token), json=role).status_code == 201
    reader = make_user("bo", ["billing-ops"])
    items = {item["id"]: item for item in client.get("/api/v1/activities", headers=bearer(reader)).json()["items"]}
    assert items[billing["id"]]["result"]["name"] == "billing-a"
    for hidden in (hr, listed):
        assert items[hidden["id"]]["result"] is None and "withheld" in items[hidden["id"]]["args"]
    assert "hr-payroll" not in str(items[hr["id"]]) and "hr-payroll" not in str(items[listed["id"]])
    # A failure's words can name what the reader may not see (here: that a user exists).
    assert items[failed["id"]]["error"] == {"code": failed["error"]["code"], "message": "withheld"}
