"""API tokens: shown once, stored hashed, scoped, expiring, revocable; on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from robofleet.auth.models import ApiToken
from robofleet.auth.principal import cli_principal
from robofleet.auth.schemas import TokenCreate
from robofleet.auth.tokens import authenticate_token, create_token
from robofleet.errors import Unauthenticated
from robofleet.store import Store
from tests.conftest import MakeUser, bearer


def test_token_is_shown_once_and_stored_hashed(client: TestClient, admin_token: str, store: Store) -> None:
    created = client.post("/api/v1/tokens", headers=bearer(admin_token), json={"name": "ci"})
    assert created.status_code == 201
    body = created.json()
    secret = body["token"]
    assert body["user"] == "root-admin" and body["name"] == "ci" and body["expires_at"] is None
    with store.transaction() as db:
        stored = db.scalar(select(ApiToken).where(ApiToken.id == body["id"]))
        assert stored is not None and secret not in stored.token_hash
    listed = client.get("/api/v1/tokens", headers=bearer(admin_token))
    assert secret not in listed.text
    assert client.get("/api/v1/me", headers=bearer(secret)).json()["username"] == "root-admin"


def test_expired_token_is_refused(store: Store, make_user: MakeUser, client: TestClient) -> None:
    make_user("temp")
    created = create_token(store, cli_principal(), TokenCreate(user="temp", expires_in_days=1))
    later = datetime.now(UTC) + timedelta(days=1, seconds=1)
    try:
        authenticate_token(store, created.token, "127.0.0.1", now=later)
    except Unauthenticated as exc:
        assert exc.code == "token_expired"
    else:
        raise AssertionError("an expired token was accepted")
    assert client.get("/api/v1/me", headers=bearer(created.token)).status_code == 200


def test_revoked_and_unknown_tokens_are_refused(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    token = make_user("leaver", ["viewer"])
    token_id = client.get("/api/v1/tokens", headers=bearer(admin_token), params={"user": "leaver"}).json()["items"][0][
        "id"
    ]
    revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=bearer(admin_token))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = client.get("/api/v1/me", headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "token_revoked"
    unknown = client.get("/api/v1/me", headers=bearer("rf_not-a-real-token"))
    assert unknown.status_code == 401 and unknown.json()["error"]["code"] == "invalid_token"
    basic = client.get("/api/v1/me", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


def test_scopes_narrow_a_token(client: TestClient, make_user: MakeUser) -> None:
    scoped = make_user("scoped-admin", ["admin"], scopes=["users:read"])
    assert client.get("/api/v1/users", headers=bearer(scoped)).status_code == 200
    refused = client.get("/api/v1/roles", headers=bearer(scoped))
    assert refused.status_code == 403 and refused.json()["error"]["details"]["permission"] == "roles:read"


def test_only_tokens_write_makes_tokens_for_others(client: TestClient, make_user: MakeUser) -> None:
    viewer = make_user("vera", ["viewer"])
    own = client.post("/api/v1/tokens", headers=bearer(viewer), json={"name": "mine"})
    assert own.status_code == 201 and own.json()["user"] == "vera"
    other = client.post("/api/v1/tokens", headers=bearer(viewer), json={"user": "root-admin"})
    assert other.status_code == 403
    mine = client.get("/api/v1/tokens", headers=bearer(viewer)).json()["items"]
    assert {token["user"] for token in mine} == {"vera"}


def test_bad_token_requests(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    assert client.post("/api/v1/tokens", headers=headers, json={"user": "ghost"}).status_code == 404
    assert client.post("/api/v1/tokens", headers=headers, json={"scopes": ["robots:fly"]}).status_code == 422
    past = client.post("/api/v1/tokens", headers=headers, json={"expires_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 422 and "past" in past.json()["error"]["message"]
    assert client.post("/api/v1/tokens", headers=headers, json={"expires_in_days": -1}).status_code == 422
    assert client.delete("/api/v1/tokens/nosuch", headers=headers).status_code == 404
