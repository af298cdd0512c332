"""What robofleet makes for itself stays out of the lists of people unless asked (issue 15, defect 8): every run's
own token, its two audit records and the internal user robot-runs. Filterable in the API (`internal=false`) and
hidden by default on the Access pages (tests/auth/test_access_pages.py); both stores."""

from __future__ import annotations

import sys
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import bearer, wait_until


def names(client: TestClient, token: str, path: str, key: str, **params: Any) -> list[str]:
    items = client.get(path, headers=bearer(token), params=params).json()["items"]
    return [str(item[key]) for item in items]


def test_run_tokens_and_the_run_user_are_filterable(client: TestClient, admin_token: str) -> None:
    admin = bearer(admin_token)
    robot = {"name": "brief", "argv": [sys.executable, "-c", "pass"]}
    assert client.post("/api/v1/robots", headers=admin, json=robot).status_code == 201
    run = client.post("/api/v1/robots/brief/start", headers=admin).json()
    wait_until(
        lambda: client.get(f"/api/v1/runs/{run['id']}", headers=admin).json()["state"] == "succeeded",
        20,
        0.1,
        "the run to end",
    )
    assert client.post("/api/v1/tokens", headers=admin, json={"name": "ci-deploy"}).status_code == 201

    # As before, everything by default in the API (scripts rely on it); internal=false leaves robofleet's own out.
    assert f"run {run['id']}" in names(client, admin_token, "/api/v1/tokens", "name")
    humans = names(client, admin_token, "/api/v1/tokens", "name", internal="false")
    assert "ci-deploy" in humans and not any(name.startswith("run ") for name in humans)
    assert "robot-runs" in names(client, admin_token, "/api/v1/users", "username")
    people = names(client, admin_token, "/api/v1/users", "username", internal="false")
    assert "root-admin" in people and "robot-runs" not in people
    everything = client.get("/api/v1/audit", headers=admin, params={"action": "token."}).json()["items"]
    assert {(r["actor"], r["action"]) for r in everything} >= {("robots", "token.create"), ("robots", "token.revoke")}
    records = client.get("/api/v1/audit", headers=admin, params={"action": "token.", "internal": "false"}).json()
    assert records["items"] and all(record["actor"] != "robots" for record in records["items"])
    assert any(record["details"].get("name") == "ci-deploy" for record in records["items"])
