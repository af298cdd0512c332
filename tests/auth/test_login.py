"""Panel login: cookies, CSRF on mutations, lockout after repeated failures; on both stores."""

from __future__ import annotations

from fastapi.testclient import TestClient

from robofleet.auth.sessions import COOKIE_NAME
from robofleet.orchestrator import Orchestrator
from tests.conftest import MakeUser, bearer


def login(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def test_login_sets_a_safe_cookie_and_returns_a_csrf_token(client: TestClient, make_user: MakeUser) -> None:
    make_user("carla", ["admin"], password="carla-password")
    response = client.post("/api/v1/auth/login", json={"username": "carla", "password": "carla-password"})
    cookie = response.headers["set-cookie"]
    assert COOKIE_NAME in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert response.json()["csrf_token"]
    assert client.get("/api/v1/me").json()["username"] == "carla"


def test_mutations_with_the_cookie_need_the_csrf_token(client: TestClient, make_user: MakeUser) -> None:
    make_user("carla", ["admin"], password="carla-password")
    csrf = login(client, "carla", "carla-password")["csrf_token"]
    body = {"username": "dora", "password": "dora-password"}
    refused = client.post("/api/v1/users", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf_failed"
    wrong = client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    assert client.get("/api/v1/users/dora").status_code == 404
    accepted = client.post("/api/v1/users", json=body, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201


def test_logout_ends_the_session(client: TestClient, make_user: MakeUser) -> None:
    make_user("carla", ["viewer"], password="carla-password")
    csrf = login(client, "carla", "carla-password")["csrf_token"]
    cookie = client.cookies.get(COOKIE_NAME)
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    client.cookies.set(COOKIE_NAME, cookie or "")
    assert client.get("/api/v1/me").status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient, make_user: MakeUser) -> None:
    make_user("carla", password="carla-password")
    wrong = client.post("/api/v1/auth/login", json={"username": "carla", "password": "nope-nope"})
    unknown = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


def test_repeated_failures_lock_the_account(client: TestClient, make_user: MakeUser, admin_token: str) -> None:
    make_user("carla", password="carla-password")
    for _ in range(3):  # the test settings lock after 3 failures
        assert client.post("/api/v1/auth/login", json={"username": "carla", "password": "bad-guess"}).status_code == 401
    locked = client.post("/api/v1/auth/login", json={"username": "carla", "password": "carla-password"})
    assert locked.status_code == 429 and locked.json()["error"]["code"] == "account_locked"
    assert int(locked.headers["retry-after"]) > 0
    # An administrator setting a new password lifts the lock.
    client.patch("/api/v1/users/carla", headers=bearer(admin_token), json={"password": "fresh-password"})
    assert (
        client.post("/api/v1/auth/login", json={"username": "carla", "password": "fresh-password"}).status_code == 200
    )


def test_disabled_user_cannot_log_in(client: TestClient, make_user: MakeUser, admin_token: str) -> None:
    make_user("carla", password="carla-password")
    client.patch("/api/v1/users/carla", headers=bearer(admin_token), json={"disabled": True})
    refused = client.post("/api/v1/auth/login", json={"username": "carla", "password": "carla-password"})
    # The same answer as a wrong password: a disabled account's password is not confirmed to anyone who tries it.
    assert refused.status_code == 401 and refused.json()["error"]["message"] == "wrong username or password"


def test_an_unknown_username_locks_like_a_real_one(client: TestClient, make_user: MakeUser) -> None:
    make_user("carla", password="carla-password")
    answers = {}
    for name in ("carla", "nobody-here"):
        for _ in range(3):  # the test settings lock after 3 failures
            client.post("/api/v1/auth/login", json={"username": name, "password": "bad-guess"})
        answer = client.post("/api/v1/auth/login", json={"username": name, "password": "bad-guess"})
        answers[name] = (answer.status_code, answer.json()["error"]["code"], answer.json()["error"]["message"][:30])
    assert answers["carla"] == answers["nobody-here"] and answers["carla"][0] == 429


def test_one_address_spraying_usernames_is_throttled(client: TestClient, context: Orchestrator) -> None:
    limit = context.settings.auth.address_failure_limit
    for number in range(limit):
        failed = client.post("/api/v1/auth/login", json={"username": f"spray{number}", "password": "bad-guess"})
        assert failed.status_code == 401
    throttled = client.post("/api/v1/auth/login", json={"username": "spray-next", "password": "bad-guess"})
    assert throttled.status_code == 429 and "address" in throttled.json()["error"]["message"]
    assert int(throttled.headers["retry-after"]) > 0


def test_login_input_is_validated(client: TestClient) -> None:
    assert client.post("/api/v1/auth/login", json={"username": "a"}).status_code == 422
    assert (
        client.post("/api/v1/auth/login", content=b"not json", headers={"content-type": "application/json"}).status_code
        == 400
    )
