"""rdp sessions through the REST API, the actions, the settings file and the CLI on both stores: defined, read,
changed and deleted with their password write-only (never in an answer, the audit log, an activity's args or the
settings shown; `has_password` instead); every bad field refused naming it; connect, disconnect, logoff, reconnect
and the secure attention keys refused for other kinds (409 not_rdp) and by permission; the intent to be connected
stored even while the agent is offline, and sent in the agent's spec with the connection and the client settings.

The sessions here live on agents that never connect (pc-01): nothing starts a client (tests/sessions/test_rdp_live.py
drives a real xrdp)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from robofleet.auth.principal import system_principal
from robofleet.errors import ConfigError
from robofleet.orchestrator import Orchestrator, prepare_store
from robofleet.sessions import store_ops
from robofleet.sessions.schemas import SessionCreate
from robofleet.settings.masking import MASK
from robofleet.settings.model import Settings
from robofleet.settings.render import as_toml, masked_tree
from robofleet.store import Store
from robofleet.web.app import create_app
from tests.conftest import MakeUser, StartServe, bearer
from tests.sessions.conftest import service_of

API = "/api/v1/sessions"
SECRET = "Winter-2026-secret!"
WINDOWS = {"name": "win", "agent": "pc-01", "kind": "rdp", "host": "10.0.0.5", "username": "bot", "password": SECRET}
OPERATIONS = ("connect", "disconnect", "logoff", "reconnect", "secure-attention")


def create(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    made = client.post(API, headers=headers, json={**WINDOWS, **fields})
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


def stored_password(context: Orchestrator, name: str) -> str | None:
    with context.store.transaction() as db:
        return store_ops.find(db, name).password


def spec_of(context: Orchestrator, name: str) -> dict[str, Any]:
    with context.store.transaction() as db:
        return dict(service_of(context).spec(store_ops.find(db, name)))


def test_an_rdp_session_keeps_its_password_write_only(
    client: TestClient, context: Orchestrator, admin_token: str
) -> None:
    headers = bearer(admin_token)
    made = create(client, headers, domain="CORP", tags=["billing"])
    assert "password" not in made and made["has_password"] is True, made
    assert made["host"] == "10.0.0.5" and made["port"] == 3389 and made["username"] == "bot"
    assert made["domain"] == "CORP" and made["security"] == "auto" and made["certificate"] == "tofu"
    assert made["logoff"] == ["key:super+r", "wait:1.5", "type:logoff", "key:Return"]
    assert made["connect"] is True and made["connection"] is None and made["state"] == "starting"
    assert made["display"] is None and made["window_manager"] is False
    for answer in (client.get(f"{API}/win", headers=headers), client.get(API, headers=headers)):
        assert answer.status_code == 200 and SECRET not in answer.text and '"password"' not in answer.text

    plain = client.post(API, headers=headers, json={"name": "plain", "agent": "pc-01"}).json()
    assert plain["host"] is None and plain["port"] is None and plain["has_password"] is False
    assert plain["logoff"] is None and plain["connect"] is True

    # Left out, the password stays; a new one replaces it (and makes the agent reconnect: its spec changes).
    kept = client.patch(f"{API}/win", headers=headers, json={"host": "rds.example.com", "port": 3390})
    assert kept.status_code == 200 and kept.json()["has_password"] is True and kept.json()["host"] == "rds.example.com"
    assert stored_password(context, "win") == SECRET
    before = spec_of(context, "win")
    renewed = client.patch(f"{API}/win", headers=headers, json={"password": "Spring-2026-secret!"})
    assert renewed.status_code == 200 and "Spring" not in renewed.text
    assert stored_password(context, "win") == "Spring-2026-secret!"
    assert spec_of(context, "win") != before

    audit = client.get("/api/v1/audit", headers=headers, params={"target": "win"})
    assert SECRET not in audit.text and "Spring-2026" not in audit.text
    updates = [r for r in audit.json()["items"] if r["action"] == "session.update"]
    assert updates[0]["details"]["fields"] == ["password"], updates
    assert updates[1]["details"]["fields"] == ["host", "port"], updates
    events = client.get(f"{API}/win/events", headers=headers)
    assert events.status_code == 200 and "secret" not in events.text

    # Another kind forgets the connection: no password left behind.
    moved = client.patch(f"{API}/win", headers=headers, json={"kind": "xvfb"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["has_password"] is False and moved.json()["host"] is None
    assert stored_password(context, "win") is None
    assert client.delete(f"{API}/win", headers=headers).status_code == 204


def test_the_agent_gets_the_connection_the_intent_and_the_client_settings(tmp_path: Path, store_url: str) -> None:
    settings = Settings(
        store={"url": store_url, "data_dir": tmp_path / "data"},
        sessions={"rdp": {"client": "/opt/freerdp/xfreerdp", "extra_args": ["/gfx"], "first_frame_seconds": 30}},
        agents={"local": False},
    )
    store = Store(settings.store)
    prepare_store(store, settings)
    context = Orchestrator(settings=settings, store=store, ready=True)
    try:
        with TestClient(create_app(context), base_url="http://testserver"):
            service = service_of(context)
            admin = system_principal()
            service.create_session(admin, SessionCreate(**{**WINDOWS, "certificate": "deny", "security": "nla"}))
            spec = spec_of(context, "win")
            assert spec["kind"] == "rdp" and spec["connect"] is True and spec["display"] is None
            assert spec["rdp"] == {
                "host": "10.0.0.5",
                "port": 3389,
                "username": "bot",
                "domain": "",
                "password": SECRET,
                "security": "nla",
                "certificate": "deny",
                "logoff": ["key:super+r", "wait:1.5", "type:logoff", "key:Return"],
                "client": "/opt/freerdp/xfreerdp",
                "extra_args": ["/gfx"],
                "first_frame_seconds": 30,
            }
            assert service.spec_for_run("win", "pc-01")["rdp"] == spec["rdp"]
            service.create_session(admin, SessionCreate(name="plain", agent="pc-01"))
            plain = spec_of(context, "plain")
            assert plain["rdp"] is None and plain["connect"] is True
            # What the sync sends to pc-01 (were it connected): both, the rdp one with its password.
            sent = service._specs_of(["pc-01"])["pc-01"]
            assert [s["name"] for s in sent] == ["win", "plain"] and sent[0]["rdp"]["password"] == SECRET  # type: ignore[index]
    finally:
        store.dispose()
    with pytest.raises(ValueError, match="first_frame_seconds"):
        Settings(sessions={"rdp": {"first_frame_seconds": 4}})


def test_bad_rdp_sessions_are_refused_naming_the_field(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    without = {key: value for key, value in WINDOWS.items()}
    cases: list[tuple[str, dict[str, Any]]] = [
        ("host", {**without, "host": None}),
        ("username", {**without, "username": None}),
        ("password", {**without, "password": None}),
        ("host", {**without, "host": "-oProxyCommand=x"}),
        ("host", {**without, "host": "/etc/passwd"}),
        ("host", {**without, "host": "+clipboard"}),
        ("host", {**without, "host": "a host"}),
        ("display", {**without, "display": ":5"}),
        ("window_manager", {**without, "window_manager": True}),
        ("port", {**without, "port": 0}),
        ("port", {**without, "port": 65536}),
        ("certificate", {**without, "certificate": "sometimes"}),
        ("certificate", {**without, "certificate": "fingerprint:sha256:abc"}),
        ("security", {**without, "security": "ssl"}),
        ("logoff.0", {**without, "logoff": ["rm -rf /"]}),
        ("logoff.1", {**without, "logoff": ["key:super+r", "wait:11"]}),
        ("logoff.0", {**without, "logoff": ["key:ctrl+alt+t; ls"]}),
        ("password", {**without, "password": "two\nlines"}),
        ("password", {**without, "password": ""}),
        ("username", {**without, "username": "bot\nroot"}),
        ("host", {"name": "win", "agent": "pc-01", "host": "10.0.0.5"}),
        ("password", {"name": "win", "agent": "pc-01", "password": SECRET}),
    ]
    for field, body in cases:
        answer = client.post(API, headers=headers, json=body)
        assert answer.status_code == 422, (field, body, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == field, (field, answer.text)
        assert SECRET not in answer.text
    assert client.get(API, headers=headers).json()["items"] == []

    create(client, headers)
    client.post(API, headers=headers, json={"name": "plain", "agent": "pc-01"})
    changes: list[tuple[str, str, dict[str, Any]]] = [
        ("win", "host", {"host": "-x"}),
        ("win", "display", {"display": ":3"}),
        ("win", "window_manager", {"window_manager": True}),
        ("win", "password", {"password": None}),
        ("win", "logoff.0", {"logoff": ["wait:-1"]}),
        ("win", "certificate", {"certificate": "trust-me"}),
        ("plain", "password", {"kind": "rdp", "host": "10.0.0.5", "username": "bot"}),
        ("plain", "host", {"kind": "rdp", "username": "bot", "password": SECRET}),
        ("plain", "host", {"host": "10.0.0.5"}),
    ]
    for name, field, body in changes:
        answer = client.patch(f"{API}/{name}", headers=headers, json=body)
        assert answer.status_code == 422, (name, body, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == field, (name, body, answer.text)
    became = client.patch(
        f"{API}/plain", headers=headers, json={"kind": "rdp", "host": "[::1]", "username": "bot", "password": SECRET}
    )
    assert became.status_code == 200, became.text
    assert became.json()["port"] == 3389 and became.json()["certificate"] == "tofu" and became.json()["has_password"]
    pinned = client.patch(f"{API}/win", headers=headers, json={"certificate": "fingerprint:sha256:" + "ab" * 32})
    assert pinned.status_code == 200, pinned.text


def test_connect_disconnect_and_logoff_are_only_an_rdp_sessions_and_stored_while_its_agent_is_offline(
    client: TestClient, context: Orchestrator, admin_token: str
) -> None:
    headers = bearer(admin_token)
    client.post(API, headers=headers, json={"name": "plain", "agent": "pc-01"})
    for operation in OPERATIONS:
        answer = client.post(f"{API}/plain/{operation}", headers=headers)
        assert answer.status_code == 409, (operation, answer.text)
        assert answer.json()["error"]["code"] == "not_rdp", answer.text
        assert client.post(f"{API}/nope/{operation}", headers=headers).status_code == 404

    create(client, headers)
    off = client.post(f"{API}/win/disconnect", headers=headers)
    assert off.status_code == 200 and off.json()["connect"] is False, off.text
    assert spec_of(context, "win")["connect"] is False, "the agent's next sync disconnects it"
    on = client.post(f"{API}/win/connect", headers=headers)
    assert on.status_code == 200 and on.json()["connect"] is True, on.text
    assert spec_of(context, "win")["connect"] is True
    for operation in ("logoff", "reconnect", "secure-attention"):
        answer = client.post(f"{API}/win/{operation}", headers=headers)
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "agent_offline", (operation, answer.text)
    assert client.get(f"{API}/win", headers=headers).json()["connect"] is True, "a logoff not done changes nothing"
    bad_wait = client.post(f"{API}/win/logoff", headers=headers, json={"wait_seconds": 0})
    assert bad_wait.status_code == 422 and bad_wait.json()["error"]["details"][0]["field"] == "wait_seconds"

    audit = client.get("/api/v1/audit", headers=headers, params={"target": "win"}).json()["items"]
    done = {(r["action"], r["outcome"]) for r in audit}
    assert {("session.connect", "ok"), ("session.disconnect", "ok"), ("session.logoff", "failed")} <= done, done
    assert ("session.secure_attention", "failed") in done and ("session.reconnect", "failed") in done
    refused = [r for r in audit if r["target"] == "win" and r["action"] == "session.disconnect"]
    assert refused[0]["details"] == {"connect": False}


def test_the_agents_connection_counts_are_kept_and_shown(
    client: TestClient, context: Orchestrator, admin_token: str
) -> None:
    headers = bearer(admin_token)
    create(client, headers)
    status = {
        "name": "win",
        "state": "unhealthy",
        "reason": "dropped: transport failed (147); reconnecting",
        "display": ":12",
        "pid": 4242,
        "restarts": 0,
        "since": "2026-01-01T10:00:00+00:00",
        "events": [{"seq": 1, "at": "2026-01-01T10:00:00+00:00", "state": "unhealthy", "reason": "dropped"}],
        "connection": {"connects": 3, "drops": 2, "client_pid": 4343, "last_exit": "147 transport failed", "x": 1},
    }
    changes, _ = service_of(context)._store_statuses("pc-01", "instance-1", [status])  # type: ignore[list-item]
    assert len(changes) == 1
    session = client.get(f"{API}/win", headers=headers).json()
    assert session["connection"] == {"connects": 3, "drops": 2, "client_pid": 4343, "last_exit": "147 transport failed"}
    assert session["state"] == "unhealthy" and session["actual_display"] == ":12"
    again, _ = service_of(context)._store_statuses("pc-01", "instance-1", [status])  # type: ignore[list-item]
    assert again == [], "the same counts are no change"
    dropped = {**status, "connection": {**status["connection"], "drops": 3}}  # type: ignore[dict-item]
    assert len(service_of(context)._store_statuses("pc-01", "instance-1", [dropped])[0]) == 1  # type: ignore[list-item]


def test_control_takes_sessions_control_and_defining_takes_sessions_admin(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    create(client, bearer(admin_token))
    viewer = bearer(make_user("v", ["viewer"]))
    client.post(
        "/api/v1/roles",
        headers=bearer(admin_token),
        json={"name": "desk-hands", "permissions": ["sessions:read", "sessions:control"]},
    )
    hands = bearer(make_user("h", ["desk-hands"]))
    for operation in OPERATIONS:
        refused = client.post(f"{API}/win/{operation}", headers=viewer)
        assert refused.status_code == 403, (operation, refused.text)
        assert refused.json()["error"]["details"]["permission"] == "sessions:control"
    assert client.post(f"{API}/win/disconnect", headers=hands).json()["connect"] is False
    assert client.post(f"{API}/win/connect", headers=hands).json()["connect"] is True
    assert client.post(f"{API}/win/logoff", headers=hands).json()["error"]["code"] == "agent_offline"
    for answer in (
        client.post(API, headers=hands, json={**WINDOWS, "name": "mine"}),
        client.patch(f"{API}/win", headers=hands, json={"password": "another-one"}),
        client.delete(f"{API}/win", headers=hands),
    ):
        assert answer.status_code == 403 and answer.json()["error"]["details"]["permission"] == "sessions:admin"


def act(client: TestClient, token: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/activities", headers=bearer(token), params={"wait": 20}, json={"action": action, "args": args}
    )
    assert answer.status_code == 201, answer.text
    activity: dict[str, Any] = answer.json()["activities"][0]
    return activity


def test_the_actions_mask_the_password_and_answer_as_the_routes(client: TestClient, admin_token: str) -> None:
    made = act(client, admin_token, "sessions.create", WINDOWS)
    assert made["state"] == "succeeded" and made["result"]["has_password"] is True, made
    assert made["args"]["password"] == "********" and made["args"]["host"] == "10.0.0.5", made["args"]
    changed = act(client, admin_token, "sessions.update", {"name": "win", "password": "Summer-2026-secret!"})
    assert changed["state"] == "succeeded" and changed["args"]["password"] == "********"
    listed = client.get("/api/v1/activities", headers=bearer(admin_token), params={"action": "sessions.create"})
    shown = client.get(f"/api/v1/activities/{made['id']}", headers=bearer(admin_token))
    for answer in (listed, shown):
        assert answer.status_code == 200 and SECRET not in answer.text and "Summer-2026" not in answer.text

    off = act(client, admin_token, "sessions.disconnect", {"name": "win"})
    assert off["state"] == "succeeded" and off["result"]["connect"] is False, off
    on = act(client, admin_token, "sessions.connect", {"name": "win"})
    assert on["result"]["connect"] is True
    logoff = act(client, admin_token, "sessions.logoff", {"name": "win", "wait_seconds": 5})
    assert logoff["state"] == "failed" and logoff["error"]["code"] == "agent_offline", logoff
    act(client, admin_token, "sessions.create", {"name": "plain", "agent": "pc-01"})
    for action in ("connect", "disconnect", "logoff", "reconnect", "secure_attention"):
        refused = act(client, admin_token, f"sessions.{action}", {"name": "plain"})
        assert refused["state"] == "failed" and refused["error"]["code"] == "not_rdp", (action, refused)
    actions = {a["name"] for a in client.get("/api/v1/actions", headers=bearer(admin_token)).json()}
    assert {f"sessions.{name}" for name in ("connect", "disconnect", "logoff", "reconnect")} <= actions


def test_rdp_sessions_of_the_settings_file_are_applied_and_shown_masked(
    client: TestClient, context: Orchestrator
) -> None:
    service = service_of(context)
    declared = Settings(
        sessions=[
            {**WINDOWS, "name": "from-file", "certificate": "ignore", "logoff": ["key:ctrl+alt+End", "wait:2"]},
            {"name": "desk", "agent": "pc-01"},
        ]
    )
    service.apply_config(declared.sessions.declared)
    service.apply_config(declared.sessions.declared)  # a second start changes nothing and fails on nothing
    session = service.get_session(system_principal(), "from-file")
    assert session.from_config and session.kind == "rdp" and session.has_password and session.certificate == "ignore"
    assert session.logoff == ["key:ctrl+alt+End", "wait:2"] and session.port == 3389
    assert stored_password(context, "from-file") == SECRET
    desk = service.get_session(system_principal(), "desk")
    assert desk.kind == "xvfb" and desk.host is None and not desk.has_password

    tree = masked_tree(declared)
    assert tree["sessions"]["declared"][0]["password"] == MASK
    assert SECRET not in as_toml(declared, sources=False)
    for bad, field in (({"host": None}, "host"), ({"host": "-x"}, "host"), ({"password": None}, "password")):
        wrong = Settings(sessions=[{**WINDOWS, "name": "bad", **bad}]).sessions.declared
        with pytest.raises(ConfigError, match=rf"sessions\.bad\.{field}") as caught:
            service.apply_config(wrong)
        assert SECRET not in str(caught.value)


@pytest.mark.slow
def test_the_session_commands_of_the_cli(start_serve: StartServe) -> None:
    serve = start_serve()
    token = serve.token()
    with serve.api(token) as api:
        assert api.post(API, json=WINDOWS).status_code == 201
        assert api.post(API, json={"name": "plain", "agent": "pc-01"}).status_code == 201

    def cli(*args: str) -> tuple[int, str, str]:
        done = serve.cli("session", *args, "--token", token)
        return done.returncode, done.stdout, done.stderr

    code, out, _ = cli("disconnect", "win")
    assert code == 0 and out.startswith("win: ") and "asked to stay disconnected" in out, out
    code, out, _ = cli("connect", "win")
    assert code == 0 and "asked to connect" in out, out
    code, _, err = cli("logoff", "win", "--wait", "5")
    assert code == 1 and "409 agent_offline" in err, err
    code, _, err = cli("reconnect", "plain")
    assert code == 1 and "409 not_rdp" in err, err
    code, out, _ = cli("list")
    assert "win" in out and "rdp" in out and SECRET not in out
    code, out, _ = cli("show", "win")
    assert code == 0 and '"has_password": true' in out and SECRET not in out
    assert SECRET not in serve.output()
