"""Users over the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer


def test_admin_creates_lists_and_reads_a_user(client: TestClient, admin_token: str) -> None:
    created = client.post(
        "/api/v1/users",
        headers=bearer(admin_token),
        json={"username": "olga", "password": "s3cret-pass", "roles": ["operator"]},
    )
    assert created.status_code == 201, created.text
    assert created.json()["username"] == "olga"
    assert created.json()["roles"] == ["operator"]
    assert "password" not in created.text and "hash" not in created.text

    listed = client.get("/api/v1/users", headers=bearer(admin_token)).json()
    assert "olga" in [user["username"] for user in listed["items"]]
    assert client.get("/api/v1/users/olga", headers=bearer(admin_token)).json()["disabled"] is False


def test_pagination_walks_every_user_once(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    for index in range(7):
        make_user(f"page{index}")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/users", headers=bearer(admin_token), params=params).json()
        seen += [user["username"] for user in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    assert {f"page{index}" for index in range(7)} <= set(seen)


def test_update_roles_and_disable(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    token = make_user("ivan", ["viewer"])
    changed = client.patch("/api/v1/users/ivan", headers=bearer(admin_token), json={"roles": ["operator", "viewer"]})
    assert changed.json()["roles"] == ["operator", "viewer"]
    client.patch("/api/v1/users/ivan", headers=bearer(admin_token), json={"disabled": True})
    refused = client.get("/api/v1/me", headers=bearer(token))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "user_disabled"


def test_bad_input_gets_a_clear_4xx_and_changes_nothing(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    cases = [
        ({"username": "x", "password": "short"}, 422, "password"),
        ({"username": "bad name!", "password": "long-enough"}, 422, "username"),
        ({"username": "eve", "password": "long-enough", "roles": ["nosuchrole"]}, 422, "nosuchrole"),
        ({"username": "eve", "password": "long-enough", "colour": "red"}, 422, "colour"),
        ({"username": "eve", "password": 12345678}, 422, "password"),
    ]
    for body, status, mentioned in cases:
        response = client.post("/api/v1/users", headers=headers, json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert mentioned in error["message"] + str(error["details"]), error
    malformed = client.post(
        "/api/v1/users", headers={**headers, "content-type": "application/json"}, content=b'{"username": "eve",'
    )
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    huge = client.post("/api/v1/users", headers=headers, json={"username": "eve", "password": "x" * 2_000_000})
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"
    names = [user["username"] for user in client.get("/api/v1/users", headers=headers).json()["items"]]
    assert "eve" not in names


def test_conflicts_and_unknowns(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    headers = bearer(admin_token)
    make_user("dup")
    again = client.post("/api/v1/users", headers=headers, json={"username": "dup", "password": "long-enough"})
    assert again.status_code == 409
    assert client.get("/api/v1/users/ghost", headers=headers).status_code == 404
    assert client.patch("/api/v1/users/ghost", headers=headers, json={"disabled": True}).status_code == 404
    assert client.delete("/api/v1/users/ghost", headers=headers).status_code == 404


def test_the_last_admin_cannot_be_removed(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    # The initial "admin" and "root-admin" are both admins: removing one is fine, the last one is not.
    assert client.delete("/api/v1/users/admin", headers=headers).status_code == 204
    refused = client.patch("/api/v1/users/root-admin", headers=headers, json={"roles": ["viewer"]})
    assert refused.status_code == 409
    assert "last enabled admin" in refused.json()["error"]["message"]
    assert client.get("/api/v1/users/root-admin", headers=headers).json()["roles"] == ["admin"]
