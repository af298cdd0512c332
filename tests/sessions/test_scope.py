"""A role narrowed by name globs or tags narrows graphical sessions as it narrows queues: a session outside the
caller's scope is as unknown as one that does not exist (404 on every route, absent from lists and the live stream),
a session in sight but without the permission is a 403 naming it, and nobody creates or re-tags a session out of
their own reach. Both stores (the stream: a real serve).

The sessions live on agents that never connect (pc-01): nothing starts a display."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import MakeUser, StartServe, bearer, wait_until

API = "/api/v1/sessions"


def role(
    client: TestClient | httpx.Client, headers: dict[str, str], name: str, permissions: list[str], **scope: Any
) -> None:
    made = client.post("/api/v1/roles", headers=headers, json={"name": name, "permissions": permissions, **scope})
    assert made.status_code == 201, made.text


def create(client: TestClient | httpx.Client, headers: dict[str, str], name: str, **fields: Any) -> None:
    made = client.post(API, headers=headers, json={"name": name, "agent": "pc-01", **fields})
    assert made.status_code == 201, made.text


def status_and_message(
    client: TestClient, headers: dict[str, str], method: str, path: str, body: Any
) -> tuple[int, str]:
    answer = client.request(method, f"{API}{path}", headers=headers, json=body)
    return answer.status_code, answer.json()["error"]["message"] if answer.content else ""


def test_a_session_outside_the_scope_is_unknown(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    admin = bearer(admin_token)
    create(client, admin, "billing-desk")
    create(client, admin, "reminders", tags=["billing"])
    create(client, admin, "hr-desk", tags=["hr"])
    role(client, admin, "billing-operator", ["sessions:*"], robot_globs=["billing-*"], robot_tags=["billing"])
    bea = bearer(make_user("bea", ["billing-operator"]))

    listed = client.get(API, headers=bea).json()["items"]
    assert [session["name"] for session in listed] == ["billing-desk", "reminders"]
    assert client.get(API, headers=bea, params={"tag": "hr"}).json()["items"] == []
    for method, path, body in [
        ("GET", "/hr-desk", None),
        ("PATCH", "/hr-desk", {"description": "mine now"}),
        ("DELETE", "/hr-desk", None),
        ("GET", "/hr-desk/events", None),
        ("POST", "/hr-desk/restart", None),
        ("GET", "/hr-desk/screenshot", None),
        ("POST", "/hr-desk/click", {"x": 1, "y": 1}),
        ("POST", "/hr-desk/type", {"text": "hello"}),
        ("POST", "/hr-desk/key", {"keys": "Return"}),
        ("POST", "/hr-desk/scroll", {"x": 1, "y": 1, "amount": 1}),
    ]:
        hidden = status_and_message(client, bea, method, path, body)
        assert hidden == (404, "no session named 'hr-desk'"), (method, path, hidden)
    assert client.get(f"{API}/hr-desk", headers=admin).json()["description"] == "", "nothing was changed"
    # Inside the scope (by glob and by tag) the role works as usual: the agent is offline, not the session unknown.
    assert client.get(f"{API}/reminders", headers=bea).status_code == 200
    offline = client.post(f"{API}/billing-desk/click", headers=bea, json={"x": 1, "y": 1})
    assert offline.status_code == 409 and offline.json()["error"]["code"] == "agent_offline"
    assert client.patch(f"{API}/billing-desk", headers=bea, json={"width": 1024}).status_code == 200

    # Nobody moves a session, or makes one, out of their own reach.
    moved = status_and_message(client, bea, "PATCH", "/reminders", {"tags": ["hr"]})
    assert moved == (403, "bea lacks the permission 'sessions:admin' on session 'reminders'")
    assert client.post(API, headers=bea, json={"name": "hr-bonus", "agent": "pc-01"}).status_code == 403
    create(client, bea, "billing-refunds")
    assert client.delete(f"{API}/billing-refunds", headers=bea).status_code == 204


def test_a_session_in_sight_without_the_permission_is_refused_by_name(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    admin = bearer(admin_token)
    create(client, admin, "hr-desk", tags=["hr"])
    role(client, admin, "hr-watcher", ["sessions:read"], robot_tags=["hr"])
    wes = bearer(make_user("wes", ["hr-watcher"]))
    assert client.get(f"{API}/hr-desk", headers=wes).status_code == 200
    assert client.get(f"{API}/hr-desk/events", headers=wes).status_code == 200
    refused = status_and_message(client, wes, "POST", "/hr-desk/click", {"x": 1, "y": 1})
    assert refused == (403, "wes lacks the permission 'sessions:control'")
    assert status_and_message(client, wes, "DELETE", "/hr-desk", None)[0] == 403


@pytest.mark.slow
def test_the_stream_says_only_the_sessions_in_sight(start_serve: StartServe) -> None:
    serve = start_serve()
    with serve.api() as admin:
        role(admin, {}, "billing-viewer", ["sessions:read"], robot_globs=["billing-*"])
        made = admin.post(
            "/api/v1/users", json={"username": "bea", "password": "pw-bea-12345", "roles": ["billing-viewer"]}
        )
        assert made.status_code == 201, made.text
        token = admin.post("/api/v1/tokens", json={"user": "bea"}).json()["token"]
        lines: list[str] = []
        opened = threading.Event()

        def read(own: httpx.Client) -> None:
            try:
                with own.stream("GET", "/api/v1/sessions-stream") as stream:
                    for line in stream.iter_lines():
                        opened.set()
                        lines.append(line)
            except httpx.HTTPError:
                return

        with httpx.Client(base_url=serve.url, headers=bearer(token), timeout=30) as own:
            reader = threading.Thread(target=read, args=(own,), daemon=True)
            reader.start()
            assert opened.wait(10)
            create(admin, {}, "hr-desk", enabled=False)
            create(admin, {}, "billing-desk", enabled=False)
            assert admin.delete(f"{API}/hr-desk").status_code == 204
            assert admin.delete(f"{API}/billing-desk").status_code == 204

            def said() -> list[dict[str, Any]] | None:
                data = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
                return data if len(data) >= 2 else None

            data = wait_until(said, 10)
        assert data is not None
        assert [item["name"] for item in data] == ["billing-desk", "billing-desk"], data
        assert data[1] == {"name": "billing-desk"}, "a deletion says the name only"
