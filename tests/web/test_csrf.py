"""CSRF tokens are compared in constant time, and a token that is not even ASCII is a refusal, never an error."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import MakeUser


def test_a_non_ascii_csrf_header_is_refused_like_a_wrong_one(client: TestClient, make_user: MakeUser) -> None:
    make_user("carla", ["admin"], password="carla-password")
    login = client.post("/api/v1/auth/login", json={"username": "carla", "password": "carla-password"})
    csrf = login.json()["csrf_token"]
    body = {"username": "dora", "password": "dora-password"}
    for sent in ("é".encode("latin-1"), f"{csrf[:-1]}é".encode()):
        refused = client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": sent})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    assert client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_a_non_ascii_login_form_token_is_refused_like_a_wrong_one(client: TestClient, make_user: MakeUser) -> None:
    make_user("carla", ["admin"], password="carla-password")
    assert client.get("/panel/login").status_code == 200  # sets the login form's CSRF cookie
    form = {"username": "carla", "password": "carla-password", "csrf_token": "jeton-expiré"}
    refused = client.post("/panel/login", data=form, follow_redirects=False)
    assert refused.status_code == 403 and "The form expired" in refused.text
