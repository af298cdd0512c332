"""Every mutation is in the audit log: who, what, target, when, from where, outcome; on both stores."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer


def audit(client: TestClient, token: str, **params: str) -> list[dict[str, object]]:
    response = client.get("/api/v1/audit", headers=bearer(token), params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


def test_successful_mutations_are_recorded(client: TestClient, admin_token: str) -> None:
    client.post("/api/v1/users", headers=bearer(admin_token), json={"username": "zoe", "password": "zoe-password"})
    client.patch("/api/v1/users/zoe", headers=bearer(admin_token), json={"password": "other-password"})
    client.post("/api/v1/roles", headers=bearer(admin_token), json={"name": "billing", "permissions": ["robots:read"]})
    records = audit(client, admin_token)
    create = next(r for r in records if r["action"] == "user.create" and r["target"] == "zoe")
    assert create["actor"].startswith("root-admin (token ")  # type: ignore[union-attr]
    assert create["outcome"] == "ok" and create["source_ip"] == "testclient" and create["time"]
    update = next(r for r in records if r["action"] == "user.update" and r["target"] == "zoe")
    assert update["details"] == {"password": "changed"}  # the password itself never appears
    assert "other-password" not in str(records)
    assert any(r["action"] == "role.create" and r["target"] == "billing" for r in records)


def test_refusals_and_failures_are_recorded(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    viewer = make_user("vic", ["viewer"])
    client.post("/api/v1/users", headers=bearer(viewer), json={"username": "x1", "password": "long-enough"})
    client.post("/api/v1/users", headers=bearer(admin_token), json={"username": "vic", "password": "long-enough"})
    client.post("/api/v1/auth/login", json={"username": "vic", "password": "wrong-one"})
    records = audit(client, admin_token)
    assert any(r["outcome"] == "denied" and r["actor"].startswith("vic") for r in records)  # type: ignore[union-attr]
    assert any(r["action"] == "user.create" and r["target"] == "vic" and r["outcome"] == "failed" for r in records)
    assert any(r["action"] == "auth.login" and r["target"] == "vic" and r["outcome"] == "failed" for r in records)


def test_audit_filters_and_pages(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    for index in range(5):
        make_user(f"bulk{index}")
    only_creates = audit(client, admin_token, action="user.create")
    assert only_creates and all(r["action"] == "user.create" for r in only_creates)
    first = client.get("/api/v1/audit", headers=bearer(admin_token), params={"limit": 2}).json()
    second = client.get(
        "/api/v1/audit", headers=bearer(admin_token), params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert first["items"][0]["id"] > first["items"][1]["id"] > second["items"][0]["id"]
    bad = client.get("/api/v1/audit", headers=bearer(admin_token), params={"cursor": "!!!"})
    assert bad.status_code in (400, 422)
