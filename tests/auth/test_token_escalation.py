"""A token holds no more than it was given: tokens made with a token are narrower and die sooner; the tokens of
robot runs and agents manage no tokens; an agent name belongs to one user. On both stores (finding 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from robofleet.auth.principal import RUN_USER, RunBinding, system_principal
from robofleet.auth.schemas import TokenCreate
from robofleet.auth.tokens import create_token
from robofleet.auth.users import ensure_service_user
from robofleet.store import Store
from tests.conftest import MakeUser, bearer


def run_token(store: Store, run_id: int, robot: str) -> str:
    """A robot run's token, made the way the robots service makes it."""
    robots = system_principal("robots")
    ensure_service_user(store, robots, RUN_USER, ["robot"])
    data = TokenCreate(user=RUN_USER, name=f"run {run_id}", scopes=["logs:write", "queues:*"], expires_in_days=1)
    return create_token(store, robots, data, run=RunBinding(run_id, robot)).token


def test_a_scoped_token_cannot_mint_a_wider_one(client: TestClient, make_user: MakeUser) -> None:
    scoped = make_user("opal", ["operator"], scopes=["logs:read"])
    assert client.get("/api/v1/robots", headers=bearer(scoped)).status_code == 403
    unscoped = client.post("/api/v1/tokens", headers=bearer(scoped), json={"name": "minted"})
    assert unscoped.status_code == 201 and unscoped.json()["scopes"] == ["logs:read"]
    assert client.get("/api/v1/robots", headers=bearer(unscoped.json()["token"])).status_code == 403
    wider = client.post("/api/v1/tokens", headers=bearer(scoped), json={"scopes": ["robots:*"]})
    assert wider.status_code == 403 and "robots:*" in wider.json()["error"]["message"]
    star = client.post("/api/v1/tokens", headers=bearer(scoped), json={"scopes": ["*"]})
    assert star.status_code == 403


def test_a_token_made_by_a_token_does_not_outlive_it(client: TestClient, make_user: MakeUser) -> None:
    make_user("tess", ["viewer"])
    headers = bearer(make_user("tess-admin", ["admin"]))
    short = client.post("/api/v1/tokens", headers=headers, json={"user": "tess", "expires_in_days": 1}).json()
    limit = datetime.fromisoformat(short["expires_at"])
    inherited = client.post("/api/v1/tokens", headers=bearer(short["token"]), json={"name": "child"})
    assert inherited.status_code == 201
    assert datetime.fromisoformat(inherited.json()["expires_at"]) == limit
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    refused = client.post("/api/v1/tokens", headers=bearer(short["token"]), json={"expires_at": later})
    assert refused.status_code == 422 and "outlive" in refused.json()["error"]["message"]
    sooner = client.post("/api/v1/tokens", headers=bearer(short["token"]), json={"expires_in_days": 0.5})
    assert sooner.status_code == 201


def test_a_run_token_manages_no_tokens(client: TestClient, store: Store, make_user: MakeUser) -> None:
    admin = bearer(make_user("ada", ["admin"]))
    mine = run_token(store, 1, "billing-a")
    other = run_token(store, 2, "hr-payroll")
    other_id = next(
        token["id"]
        for token in client.get("/api/v1/tokens", headers=admin, params={"user": RUN_USER}).json()["items"]
        if token["name"] == "run 2"
    )
    minted = client.post("/api/v1/tokens", headers=bearer(mine), json={"name": "run 2", "scopes": ["logs:write"]})
    assert minted.status_code == 403 and "run" in minted.json()["error"]["message"]
    assert client.get("/api/v1/tokens", headers=bearer(mine)).status_code == 403
    assert client.delete(f"/api/v1/tokens/{other_id}", headers=bearer(mine)).status_code == 403
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 200
    # Nor does anyone else make tokens of the run user by hand: a run token comes with its run only.
    by_hand = client.post("/api/v1/tokens", headers=admin, json={"user": RUN_USER, "name": "run 2"})
    assert by_hand.status_code == 403


def test_a_scoped_token_revokes_no_wider_token_of_its_user(client: TestClient, make_user: MakeUser) -> None:
    full = make_user("rosa", ["operator"])
    scoped = client.post("/api/v1/tokens", headers=bearer(full), json={"scopes": ["logs:read"]}).json()
    full_id = next(
        t["id"] for t in client.get("/api/v1/tokens", headers=bearer(full)).json()["items"] if not t["scopes"]
    )
    refused = client.delete(f"/api/v1/tokens/{full_id}", headers=bearer(scoped["token"]))
    assert refused.status_code == 403
    assert client.get("/api/v1/me", headers=bearer(full)).status_code == 200
    assert client.delete(f"/api/v1/tokens/{scoped['id']}", headers=bearer(scoped["token"])).status_code == 200


def test_listing_another_users_tokens_says_nothing_about_that_user(client: TestClient, make_user: MakeUser) -> None:
    viewer = bearer(make_user("vic", ["viewer"]))
    existing = client.get("/api/v1/tokens", headers=viewer, params={"user": "root-admin"})
    make_user("root-admin", ["admin"])
    present = client.get("/api/v1/tokens", headers=viewer, params={"user": "root-admin"})
    assert existing.status_code == present.status_code == 403
    assert client.get("/api/v1/tokens", headers=viewer, params={"user": "vic"}).status_code == 200


def test_an_agent_name_belongs_to_one_user(client: TestClient, make_user: MakeUser) -> None:
    admin = bearer(make_user("ada", ["admin"]))
    make_user("agent-pc01", ["agent"])
    make_user("agent-other", ["agent"])
    make_user("plain", ["viewer"])
    bound = client.post("/api/v1/tokens", headers=admin, json={"user": "agent-pc01", "agent": "pc-01"})
    assert bound.status_code == 201 and bound.json()["agent"] == "pc-01"
    again = client.post("/api/v1/tokens", headers=admin, json={"user": "agent-pc01", "agent": "pc-01"})
    assert again.status_code == 201
    taken = client.post("/api/v1/tokens", headers=admin, json={"user": "agent-other", "agent": "pc-01"})
    assert taken.status_code == 409 and "agent-pc01" in taken.json()["error"]["message"]
    not_agent = client.post("/api/v1/tokens", headers=admin, json={"user": "plain", "agent": "pc-02"})
    assert not_agent.status_code == 422 and "agents:connect" in not_agent.json()["error"]["message"]
    for bad in ("local", "pc/01", "pc 01", "-x", "x" * 65):
        refused = client.post("/api/v1/tokens", headers=admin, json={"user": "agent-other", "agent": bad})
        assert refused.status_code == 422, bad
    # The agent's own token manages no tokens.
    assert client.post("/api/v1/tokens", headers=bearer(bound.json()["token"]), json={}).status_code == 403
    # Once the first user's tokens for the name are revoked, the name is free.
    for token in client.get("/api/v1/tokens", headers=admin, params={"user": "agent-pc01"}).json()["items"]:
        client.delete(f"/api/v1/tokens/{token['id']}", headers=admin)
    moved = client.post("/api/v1/tokens", headers=admin, json={"user": "agent-other", "agent": "pc-01"})
    assert moved.status_code == 201
