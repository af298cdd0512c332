"""A NUL anywhere in a body's text (a value or a key, however deep) is refused with a 422 naming where, before any
statement: none reaches a store (PostgreSQL would fail, and its error would quote the text into the logs), on both
stores (re-probe N3, N5)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import bearer

SECRET = "SECRETVALUE-1234"


def refused(client: TestClient, token: str, method: str, path: str, body: Any, where: str) -> None:
    answer = client.request(method, path, headers=bearer(token), json=body)
    assert answer.status_code == 422, (path, answer.status_code, answer.text)
    assert where in answer.text and "NUL" in answer.text, answer.text
    assert SECRET not in answer.text


def test_nul_in_any_body_text_is_refused_before_the_store(client: TestClient, admin_token: str) -> None:
    refused(
        client,
        admin_token,
        "POST",
        "/api/v1/activities",
        {"action": "system.echo", "args": {"message": f"my-api-key={SECRET} \u0000"}},
        "args.message",
    )
    robot: dict[str, Any] = {"name": "nul-bot", "argv": ["true"]}
    for field, value, where in (
        ("argv", ["echo", "a\u0000b"], "argv[1]"),
        ("env", {"A\u0000B": "x"}, "env.A"),
        ("env", {"TOKEN": f"{SECRET}\u0000"}, "env.TOKEN"),
        ("tags", ["fin\u0000"], "tags[0]"),
    ):
        refused(client, admin_token, "POST", "/api/v1/robots", {**robot, field: value}, where)
    assert client.post("/api/v1/robots", headers=bearer(admin_token), json=robot).status_code == 201
    refused(client, admin_token, "PATCH", "/api/v1/robots/nul-bot", {"tags": ["a\u0000"]}, "tags[0]")
    role = {"name": "nul-role", "permissions": ["robots:read"], "robot_globs": ["billing-\u0000"]}
    refused(client, admin_token, "POST", "/api/v1/roles", role, "robot_globs[0]")
    assert client.get("/api/v1/robots/nul-bot", headers=bearer(admin_token)).json()["tags"] == []
    logs = client.get("/api/v1/logs", headers=bearer(admin_token), params={"q": SECRET}).json()["items"]
    assert logs == []
