"""The robot form no longer misleads (issue 15, defect 8): a graphical session must name a session on the robot's
agent (issue 16), else the API refuses it with a clear message; the agent is picked among the known agents (online or
offline), and one not connected yet can still be named."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from robofleet.agents import roster
from robofleet.store import Store
from tests.conftest import MakeUser, bearer

FORM = {
    "argv": "true",
    "safe_stop_timeout": "30",
    "max_concurrent": "1",
    "restart.policy": "never",
    "restart.backoff_seconds": "5",
    "restart.give_up_after": "5",
    "restart.window_seconds": "600",
}


def test_a_session_must_be_one_on_the_robots_agent(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    refused = client.post(
        "/api/v1/robots", headers=headers, json={"name": "desk", "argv": ["true"], "session": "desk1"}
    )
    assert refused.status_code == 422
    assert "no session named 'desk1'" in refused.text
    assert client.get("/api/v1/robots/desk", headers=headers).status_code == 404
    assert client.post("/api/v1/robots", headers=headers, json={"name": "desk", "argv": ["true"]}).status_code == 201
    changed = client.patch("/api/v1/robots/desk", headers=headers, json={"session": "desk1"})
    assert changed.status_code == 422 and "no session named 'desk1'" in changed.text
    assert client.get("/api/v1/robots/desk", headers=headers).json()["session"] is None
    assert client.patch("/api/v1/robots/desk", headers=headers, json={"session": None}).status_code == 200


def test_the_agent_is_picked_among_the_known_ones(client: TestClient, make_user: MakeUser, store: Store) -> None:
    make_user("ada", ["admin"], password="ada-password")
    roster.connected(store, "pc-01", "ada", {"host": "pc01"})
    roster.left(store, "pc-01", "")
    assert client.post("/api/v1/auth/login", json={"username": "ada", "password": "ada-password"}).status_code == 200

    html = client.get("/panel/robots").text
    assert '<select name="agent"' in html
    assert ">local (online)</option>" in html and ">pc-01 (offline)</option>" in html
    assert "runs once an\n      agent connects under that name" in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None

    def create(name: str, **fields: str) -> str:
        made = client.post(
            "/panel/robots",
            data={**FORM, "csrf_token": csrf.group(1), "name": name, **fields},
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
        return str(client.get(f"/api/v1/robots/{name}").json()["agent"])

    assert create("picked", agent="pc-01") == "pc-01"
    assert create("named", agent="local", agent_new="pc-02") == "pc-02"  # not connected yet: kept all the same
    edit = client.get("/panel/robots/named").text
    assert re.search(r'<option value="pc-02" selected>pc-02</option>', edit)  # no state known: never connected


def test_the_form_names_a_session_of_the_robots_agent(
    client: TestClient, make_user: MakeUser, admin_token: str
) -> None:
    """The form's session field suggests the sessions one may see, saves one on the robot's agent, refuses another
    with the field's message, and the robot's page links to it."""
    for name, agent in (("desk", "local"), ("far-desk", "pc-01")):
        made = client.post("/api/v1/sessions", headers=bearer(admin_token), json={"name": name, "agent": agent})
        assert made.status_code == 201, made.text
    make_user("ada", ["admin"], password="ada-password")
    assert client.post("/api/v1/auth/login", json={"username": "ada", "password": "ada-password"}).status_code == 200
    html = client.get("/panel/robots").text
    assert 'name="session"' in html and '<option value="desk">desk on local' in html
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None
    form = {**FORM, "csrf_token": csrf.group(1), "agent": "local"}

    refused = client.post("/panel/robots", data={**form, "name": "clerk", "session": "far-desk"})
    assert refused.status_code == 422 and "far-desk" in refused.text
    assert client.get("/api/v1/robots/clerk").status_code == 404
    made = client.post("/panel/robots", data={**form, "name": "clerk", "session": "desk"}, follow_redirects=False)
    assert made.status_code == 303, made.text
    assert client.get("/api/v1/robots/clerk").json()["session"] == "desk"
    assert '<a href="/panel/sessions/desk">desk</a>' in client.get("/panel/robots/clerk").text
