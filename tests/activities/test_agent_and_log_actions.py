"""`agents.list|get|system` and `logs.search` as actions: the same answers as their routes, with the same
permission and the same narrowing to robots, through the activity processor. On both stores."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer


def run(client: TestClient, token: str, action: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/activities", headers=bearer(token), params={"wait": 20}, json={"action": action, "args": args or {}}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["activities"][0]


def test_agent_actions_answer_as_their_routes(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    listed = run(client, admin_token, "agents.list")
    assert listed["state"] == "succeeded", listed
    route = client.get("/api/v1/agents", headers=bearer(admin_token)).json()["items"]
    assert [a["name"] for a in listed["result"]["items"]] == [a["name"] for a in route] == ["local"]
    one = run(client, admin_token, "agents.get", {"name": "local"})
    assert one["result"]["name"] == "local"
    system = run(client, admin_token, "agents.system", {"name": "local"})
    assert system["state"] == "succeeded" and system["result"]["cpu_count"] >= 1, system
    offline = run(client, admin_token, "agents.get", {"name": "pc-nowhere"})
    assert offline["state"] == "failed" and offline["error"]["code"] == "agent_offline"
    bad = client.post("/api/v1/activities", headers=bearer(admin_token), json={"action": "agents.get", "args": {}})
    assert bad.status_code == 422
    role = {"name": "runner", "permissions": ["activities:run"]}
    assert client.post("/api/v1/roles", headers=bearer(admin_token), json=role).status_code == 201
    nobody = make_user("nobody", ["runner"])
    refused = client.post("/api/v1/activities", headers=bearer(nobody), json={"action": "agents.list"})
    assert refused.status_code == 403 and "agents:read" in refused.json()["error"]["message"]


def test_log_search_action_reads_as_the_caller_may(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    records = [
        {"source": "robot:billing-a", "level": "ERROR", "message": "invoice portal timed out"},
        {"source": "robot:hr-payroll", "level": "ERROR", "message": "payroll portal timed out"},
        {"source": "orchestrator", "message": "portal check"},
    ]
    assert client.post("/api/v1/logs", headers=bearer(admin_token), json={"records": records}).status_code == 201
    everything = run(client, admin_token, "logs.search", {"q": "portal", "order": "asc"})
    assert [r["message"] for r in everything["result"]["items"]] == [r["message"] for r in records]
    errors = run(client, admin_token, "logs.search", {"level": "ERROR", "source": "robot:*"})
    assert {r["source"] for r in errors["result"]["items"]} == {"robot:billing-a", "robot:hr-payroll"}
    role = {"name": "billing-logs", "permissions": ["logs:read", "activities:run"], "robot_globs": ["billing-*"]}
    assert client.post("/api/v1/roles", headers=bearer(admin_token), json=role).status_code == 201
    billing = make_user("bea", ["billing-logs"])
    narrowed = run(client, billing, "logs.search", {"q": "portal"})
    assert [r["source"] for r in narrowed["result"]["items"]] == ["robot:billing-a"]
    route = client.get("/api/v1/logs", headers=bearer(billing), params={"q": "portal"}).json()["items"]
    assert [r["id"] for r in route] == [r["id"] for r in narrowed["result"]["items"]]
    bad = run(client, admin_token, "logs.search", {"level": "LOUD"})
    assert bad["state"] == "failed" and bad["error"]["details"]["field"] == "level"
