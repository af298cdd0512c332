"""Roles over the API: built-ins fixed, custom roles validated, in-use roles kept; on both stores."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer


def test_builtin_roles_exist_and_are_fixed(client: TestClient, admin_token: str) -> None:
    names = {role["name"] for role in client.get("/api/v1/roles", headers=bearer(admin_token)).json()["items"]}
    assert {"admin", "operator", "viewer", "robot", "agent"} <= names
    change = client.patch("/api/v1/roles/viewer", headers=bearer(admin_token), json={"permissions": ["*"]})
    assert change.status_code == 409
    assert client.delete("/api/v1/roles/admin", headers=bearer(admin_token)).status_code == 409


def test_custom_role_scoped_to_robots(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    body = {
        "name": "billing-ops",
        "permissions": ["robots:start", "robots:read"],
        "robot_globs": ["billing-*"],
        "robot_tags": ["finance"],
        "description": "Runs the billing robots",
    }
    created = client.post("/api/v1/roles", headers=bearer(admin_token), json=body)
    assert created.status_code == 201 and created.json()["robot_globs"] == ["billing-*"]
    token = make_user("bo", ["billing-ops"])
    me = client.get("/api/v1/me", headers=bearer(token)).json()
    assert me["roles"] == ["billing-ops"] and "robots:start" in me["permissions"]
    updated = client.patch(
        "/api/v1/roles/billing-ops", headers=bearer(admin_token), json={"permissions": ["logs:read"]}
    )
    assert updated.json()["permissions"] == ["logs:read"]
    assert client.get("/api/v1/me", headers=bearer(token)).json()["permissions"] == ["logs:read"]
    in_use = client.delete("/api/v1/roles/billing-ops", headers=bearer(admin_token))
    assert in_use.status_code == 409
    client.patch("/api/v1/users/bo", headers=bearer(admin_token), json={"roles": []})
    assert client.delete("/api/v1/roles/billing-ops", headers=bearer(admin_token)).status_code == 204
    assert client.get("/api/v1/roles/billing-ops", headers=bearer(admin_token)).status_code == 404


def test_bad_roles_are_refused(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    typo = client.post("/api/v1/roles", headers=headers, json={"name": "x", "permissions": ["robots:strat"]})
    assert typo.status_code == 422 and "robots:strat" in typo.json()["error"]["message"]
    assert client.post("/api/v1/roles", headers=headers, json={"name": "Bad Name"}).status_code == 422
    assert client.post("/api/v1/roles", headers=headers, json={"name": "admin"}).status_code == 409
    assert client.post("/api/v1/roles", headers=headers, json={"name": "ok", "extra": 1}).status_code == 422
    names = {role["name"] for role in client.get("/api/v1/roles", headers=headers).json()["items"]}
    assert "x" not in names and "ok" not in names
