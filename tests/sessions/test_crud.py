"""Sessions through the REST API on both stores: created, read, changed, deleted, every change audited and in the
session's history; bad input refused with its field and reason, nothing half-written; the settings file's sessions
applied at every start; a robot names only a session on its own agent; an agent that never comes is offline.

The sessions here live on agents that never connect (pc-01, pc-02): nothing starts a display."""

from __future__ import annotations

import base64
import io
import os
import sys
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from robofleet.auth.principal import system_principal
from robofleet.errors import ConfigError
from robofleet.orchestrator import Orchestrator
from robofleet.sessions import store_ops
from robofleet.settings.model import Settings
from robofleet.store.base import utcnow
from tests.conftest import MakeUser, bearer, wait_until
from tests.sessions.conftest import service_of

API = "/api/v1/sessions"


def create(client: TestClient, headers: dict[str, str], name: str, **fields: Any) -> dict[str, Any]:
    made = client.post(API, headers=headers, json={"name": name, "agent": "pc-01", **fields})
    assert made.status_code == 201, made.text
    result: dict[str, Any] = made.json()
    return result


def test_a_session_is_created_read_changed_and_deleted(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    made = create(client, headers, "desk", width=1024, height=768, window_manager=True, tags=["billing"])
    assert made["kind"] == "xvfb" and made["depth"] == 24 and made["restart"] == "always"
    assert made["record_seconds"] == 0 and made["enabled"] is True and made["from_config"] is False
    assert made["state"] == "starting" and made["restarts"] == 0 and made["actual_display"] is None
    create(client, headers, "screen0", kind="attach", display=":0", agent="pc-02")

    assert client.get(f"{API}/desk", headers=headers).json()["width"] == 1024
    first = client.get(API, headers=headers, params={"limit": 1}).json()
    assert [s["name"] for s in first["items"]] == ["desk"] and first["next_cursor"]
    rest = client.get(API, headers=headers, params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [s["name"] for s in rest["items"]] == ["screen0"] and rest["next_cursor"] is None
    by_agent = client.get(API, headers=headers, params={"agent": "pc-02"}).json()["items"]
    assert [s["name"] for s in by_agent] == ["screen0"]
    by_tag = client.get(API, headers=headers, params={"tag": "billing"}).json()["items"]
    assert [s["name"] for s in by_tag] == ["desk"]
    by_state = client.get(API, headers=headers, params={"state": "healthy"}).json()["items"]
    assert by_state == []

    changed = client.patch(f"{API}/desk", headers=headers, json={"width": 800, "enabled": False})
    assert changed.status_code == 200, changed.text
    assert changed.json()["width"] == 800 and changed.json()["state"] == "stopped"
    assert changed.json()["state_reason"] == "disabled" and changed.json()["tags"] == ["billing"]
    events = client.get(f"{API}/desk/events", headers=headers).json()["items"]
    assert [(e["state"], e["reason"]) for e in events] == [("stopped", "disabled"), ("starting", "created")]
    assert events[0]["source"].startswith("root-admin")

    assert client.delete(f"{API}/desk", headers=headers).status_code == 204
    assert client.get(f"{API}/desk", headers=headers).status_code == 404
    assert client.get(f"{API}/desk/events", headers=headers).status_code == 404
    audit = client.get("/api/v1/audit", headers=headers, params={"target": "desk"}).json()["items"]
    assert {"session.create", "session.update", "session.delete"} <= {record["action"] for record in audit}


def test_bad_sessions_are_refused_naming_the_field(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    cases: dict[str, dict[str, Any]] = {
        "name": {"name": "no spaces"},
        "width": {"name": "s", "width": 100},
        "height": {"name": "s", "height": 5000},
        "depth": {"name": "s", "depth": 32},
        "kind": {"name": "s", "kind": "vnc"},
        "display": {"name": "s", "display": "localhost:0"},
        "record_seconds": {"name": "s", "record_seconds": 121},
        "restart": {"name": "s", "restart": "sometimes"},
        "extra": {"name": "s", "extra": 1},
    }
    for field, body in cases.items():
        answer = client.post(API, headers=headers, json=body)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == field, answer.text
    no_display = client.post(API, headers=headers, json={"name": "s", "kind": "attach"})
    assert no_display.status_code == 422 and "names the display" in no_display.text
    manager = client.post(
        API, headers=headers, json={"name": "s", "kind": "attach", "display": ":0", "window_manager": True}
    )
    assert manager.status_code == 422 and "window_manager" in manager.text
    assert client.get(API, headers=headers).json()["items"] == []

    create(client, headers, "a", display=":5")
    assert client.post(API, headers=headers, json={"name": "a", "agent": "pc-01"}).status_code == 409
    taken = client.post(API, headers=headers, json={"name": "b", "agent": "pc-01", "display": ":5"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "display_in_use"
    create(client, headers, "c", agent="pc-02", display=":5")  # another machine's :5
    assert client.patch(f"{API}/a", headers=headers, json={"width": None}).status_code == 422
    assert client.patch(f"{API}/a", headers=headers, json={"kind": "attach", "window_manager": True}).status_code == 422
    assert client.patch(f"{API}/nope", headers=headers, json={"width": 800}).status_code == 404
    assert client.delete(f"{API}/nope", headers=headers).status_code == 404
    cleared = client.patch(f"{API}/a", headers=headers, json={"display": None})
    assert cleared.status_code == 200 and cleared.json()["display"] is None


def test_screens_and_input_of_unknown_or_unusable_sessions_are_refused(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    assert client.get(f"{API}/nope/screenshot", headers=headers).status_code == 404
    assert client.post(f"{API}/nope/click", headers=headers, json={"x": 1, "y": 1}).status_code == 404
    create(client, headers, "far", width=800, height=600)
    offline = client.get(f"{API}/far/screenshot", headers=headers)
    assert offline.status_code == 409 and offline.json()["error"]["code"] == "agent_offline"
    outside = client.post(f"{API}/far/click", headers=headers, json={"x": 800, "y": 10})
    assert outside.status_code == 422 and "outside the screen" in outside.text
    cases: list[tuple[str, dict[str, Any] | None, str]] = [
        ("screenshot?scale=0", None, "query.scale"),
        ("screenshot?scale=1.5", None, "query.scale"),
        ("screenshot?max_width=0", None, "query.max_width"),
        ("screenshot?quality=100", None, "query.quality"),
        ("screenshot?format=gif", None, "query.format"),
        ("click", {"x": -1, "y": 0}, "x"),
        ("click", {"x": 1, "y": 1, "button": "fourth"}, "button"),
        ("type", {"text": "x" * 10_001}, "text"),
        ("type", {"text": ""}, "text"),
        ("key", {"keys": "ctrl+alt+t; rm -rf /"}, "keys"),
        ("scroll", {"x": 1, "y": 1, "amount": 0}, "amount"),
    ]
    for path, body, field in cases:
        if body is None:
            answer = client.get(f"{API}/far/{path}", headers=headers)
        else:
            answer = client.post(f"{API}/far/{path}", headers=headers, json=body)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == field, (path, answer.text)
    assert client.get("/api/v1/runs/999/evidence", headers=headers).status_code == 404


def test_permissions_split_looking_controlling_and_defining(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    create(client, bearer(admin_token), "desk")
    viewer = bearer(make_user("v", ["viewer"]))
    operator = bearer(make_user("o", ["operator"]))
    looker = bearer(make_user("l", ["operator"], scopes=["sessions:read"]))
    assert client.get(f"{API}/desk", headers=viewer).status_code == 200
    for headers in (viewer, looker):
        assert client.post(f"{API}/desk/click", headers=headers, json={"x": 1, "y": 1}).status_code == 403
        assert client.post(f"{API}/desk/type", headers=headers, json={"text": "hi"}).status_code == 403
        assert client.patch(f"{API}/desk", headers=headers, json={"width": 800}).status_code == 403
        assert client.post(f"{API}/desk/restart", headers=headers).status_code == 403
    assert client.post(API, headers=viewer, json={"name": "mine", "agent": "pc-01"}).status_code == 403
    assert client.patch(f"{API}/desk", headers=operator, json={"width": 800}).status_code == 200


def test_a_robot_names_only_a_session_on_its_own_agent(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    create(client, headers, "desk")
    robot = {"name": "clerk", "agent": "pc-01", "argv": ["true"]}
    unknown = client.post("/api/v1/robots", headers=headers, json={**robot, "session": "nope"})
    assert unknown.status_code == 422 and "no session named 'nope'" in unknown.text
    elsewhere = client.post("/api/v1/robots", headers=headers, json={**robot, "agent": "pc-02", "session": "desk"})
    assert elsewhere.status_code == 422 and "is on agent pc-01" in elsewhere.text
    assert client.get("/api/v1/robots/clerk", headers=headers).status_code == 404
    made = client.post("/api/v1/robots", headers=headers, json={**robot, "session": "desk"})
    assert made.status_code == 201 and made.json()["session"] == "desk"
    moved = client.patch("/api/v1/robots/clerk", headers=headers, json={"agent": "pc-02"})
    assert moved.status_code == 422 and "is on agent pc-01" in moved.text

    busy = client.delete(f"{API}/desk", headers=headers)
    assert busy.status_code == 409 and busy.json()["error"]["details"]["robots"] == ["clerk"]
    away = client.patch(f"{API}/desk", headers=headers, json={"agent": "pc-02"})
    assert away.status_code == 409 and "clerk" in away.text
    assert client.patch("/api/v1/robots/clerk", headers=headers, json={"session": None}).status_code == 200
    assert client.delete(f"{API}/desk", headers=headers).status_code == 204


def test_sessions_of_an_agent_that_is_not_connected_are_unhealthy(
    client: TestClient, context: Orchestrator, admin_token: str
) -> None:
    headers = bearer(admin_token)
    service_of(context).offline_after_seconds = 0
    create(client, headers, "desk")

    def offline() -> dict[str, Any] | None:
        session: dict[str, Any] = client.get(f"{API}/desk", headers=headers).json()
        return session if session["state"] == "unhealthy" else None

    session = wait_until(offline, 10)
    assert session["state_reason"] == "agent pc-01 is offline"
    events = client.get(f"{API}/desk/events", headers=headers).json()["items"]
    assert events[0]["reason"] == "agent pc-01 is offline" and events[0]["source"] == "server"
    # The history is kept as long as evidence, then dropped by the same retention pass.
    service_of(context).evidence.apply_retention()
    assert client.get(f"{API}/desk/events", headers=headers).json()["items"] == events
    service_of(context).evidence.apply_retention(utcnow() + timedelta(days=15))
    assert client.get(f"{API}/desk/events", headers=headers).json()["items"] == []


def test_sessions_of_the_settings_file_are_applied_at_every_start(client: TestClient, context: Orchestrator) -> None:
    service = service_of(context)
    declared = Settings(sessions=[{"name": "from-file", "agent": "pc-01", "width": 1024, "record_seconds": 5}])
    service.apply_config(declared.sessions.declared)
    service.apply_config(declared.sessions.declared)  # a second start changes nothing and fails on nothing
    session = service.get_session(system_principal(), "from-file")
    assert session.from_config and session.width == 1024 and session.record_seconds == 5
    assert session.kind == "xvfb" and session.height == 800
    bad = Settings(sessions=[{"name": "bad", "width": 10}]).sessions.declared
    with pytest.raises(ConfigError, match=r"sessions\.bad\.width"):
        service.apply_config(bad)
    attach = Settings(sessions=[{"name": "bad", "kind": "attach"}]).sessions.declared
    with pytest.raises(ConfigError, match=r"sessions\.bad"):
        service.apply_config(attach)


def act(client: TestClient, token: str, action: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = client.post(
        "/api/v1/activities", headers=bearer(token), params={"wait": 20}, json={"action": action, "args": args or {}}
    )
    assert answer.status_code == 201, answer.text
    activity: dict[str, Any] = answer.json()["activities"][0]
    return activity


def test_sessions_as_actions_answer_as_their_routes(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    made = act(client, admin_token, "sessions.create", {"name": "desk", "agent": "pc-01", "width": 1024})
    assert made["state"] == "succeeded" and made["result"]["width"] == 1024, made
    listed = act(client, admin_token, "sessions.list", {"agent": "pc-01"})
    assert [s["name"] for s in listed["result"]["items"]] == ["desk"]
    assert act(client, admin_token, "sessions.get", {"name": "desk"})["result"]["state"] == "starting"
    changed = act(client, admin_token, "sessions.update", {"name": "desk", "height": 700})
    assert changed["result"]["height"] == 700 and changed["result"]["width"] == 1024
    shot = act(client, admin_token, "sessions.screenshot", {"name": "desk"})
    assert shot["state"] == "failed" and shot["error"]["code"] == "agent_offline"
    outside = act(client, admin_token, "sessions.click", {"name": "desk", "x": 5000, "y": 1})
    assert outside["state"] == "failed" and outside["error"]["code"] == "invalid"
    viewer = make_user("v", ["viewer", "operator"], scopes=["sessions:read", "activities:run"])
    refused = client.post(
        "/api/v1/activities",
        headers=bearer(viewer),
        json={"action": "sessions.type", "args": {"name": "desk", "text": "x"}},
    )
    assert refused.status_code == 403 and "sessions:control" in refused.json()["error"]["message"]
    assert act(client, admin_token, "sessions.delete", {"name": "desk"})["result"] == {"deleted": "desk"}
    actions = {a["name"] for a in client.get("/api/v1/actions", headers=bearer(admin_token)).json()}
    expected = {"list", "get", "create", "update", "delete", "screenshot", "click", "type", "key", "restart"}
    assert {f"sessions.{name}" for name in expected} <= actions


def test_a_failed_runs_evidence_is_kept_once_served_to_who_may_see_the_run_and_dropped_after_its_retention(
    client: TestClient, context: Orchestrator, admin_token: str, make_user: MakeUser
) -> None:
    headers = bearer(admin_token)
    argv = [sys.executable, "-c", "import sys; print('giving up'); sys.exit(3)"]
    assert client.post("/api/v1/robots", headers=headers, json={"name": "clerk", "argv": argv}).status_code == 201
    started = client.post("/api/v1/robots/clerk/start", headers=headers)
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]

    def kept() -> dict[str, Any] | None:
        found = client.get(f"/api/v1/runs/{run_id}/evidence", headers=headers)
        return found.json() if found.status_code == 200 else None

    body = wait_until(kept, 20)
    assert body["robot"] == "clerk" and body["agent"] == "local" and body["exit"]["exit_code"] == 3, body
    assert any("giving up" in line["text"] for line in body["output"]), body
    assert body["screenshot_url"] is None and body["recording_url"] is None  # no session: no screen
    assert client.get(f"/api/v1/runs/{run_id}/evidence/screenshot", headers=headers).status_code == 404
    evidence = service_of(context).evidence
    evidence.keep(run_id, "clerk", "local", {"output": []})  # a second copy changes nothing
    assert client.get(f"/api/v1/runs/{run_id}/evidence", headers=headers).json()["output"] == body["output"]
    outsider = make_user("o", ["viewer"], scopes=["sessions:read"])
    assert client.get(f"/api/v1/runs/{run_id}/evidence", headers=bearer(outsider)).status_code == 403

    assert evidence.apply_retention() == 0
    assert evidence.apply_retention(utcnow() + timedelta(days=15)) == 1
    assert client.get(f"/api/v1/runs/{run_id}/evidence", headers=headers).status_code == 404


def test_the_text_a_type_action_sends_is_never_stored(client: TestClient, admin_token: str) -> None:
    create(client, bearer(admin_token), "desk")
    typed = act(client, admin_token, "sessions.type", {"name": "desk", "text": "hunter2-secret"})
    assert typed["state"] == "failed" and typed["error"]["code"] == "agent_offline", typed
    assert typed["args"]["text"] != "hunter2-secret" and typed["args"]["name"] == "desk", typed
    stored = client.get(f"/api/v1/activities/{typed['id']}", headers=bearer(admin_token))
    assert "hunter2-secret" not in stored.text
    too_long = client.post(
        "/api/v1/activities",
        headers=bearer(admin_token),
        json={"action": "sessions.type", "args": {"name": "desk", "text": "x" * 10_001}},
    )
    assert too_long.status_code == 422 and "text" in too_long.text


def test_evidence_shows_output_only_with_logs_read_and_screens_only_with_sessions_read(
    client: TestClient, context: Orchestrator, admin_token: str, make_user: MakeUser
) -> None:
    headers = bearer(admin_token)
    robot = {"name": "clerk", "argv": [sys.executable, "-c", "print('fine')"]}
    assert client.post("/api/v1/robots", headers=headers, json=robot).status_code == 201
    run_id = client.post("/api/v1/robots/clerk/start", headers=headers).json()["id"]
    wait_until(lambda: client.get(f"/api/v1/runs/{run_id}", headers=headers).json()["state"] == "succeeded", 20)
    image = io.BytesIO()
    Image.new("RGB", (40, 30), (0x33, 0x66, 0xCC)).save(image, "PNG")
    bundle = {
        "output": [{"stream": "stdout", "text": "password=hunter2"}],
        "screenshot": {"content_type": "image/png", "data": base64.b64encode(image.getvalue()).decode()},
    }
    service_of(context).evidence.keep(run_id, "clerk", "local", bundle)
    for name, permissions in {
        "runs": ["robots:read"],
        "logs": ["robots:read", "logs:read"],
        "screens": ["robots:read", "sessions:read"],
    }.items():
        made = client.post(
            "/api/v1/roles", headers=headers, json={"name": name, "permissions": permissions, "robot_globs": ["clerk"]}
        )
        assert made.status_code == 201, made.text
    made = client.post(
        "/api/v1/roles",
        headers=headers,
        json={"name": "other-screens", "permissions": ["sessions:read", "logs:read"], "robot_globs": ["other-*"]},
    )
    assert made.status_code == 201, made.text

    def seen(*roles: str) -> tuple[dict[str, Any], int]:
        user = bearer(make_user("-".join(roles), list(roles)))
        body = client.get(f"/api/v1/runs/{run_id}/evidence", headers=user)
        assert body.status_code == 200, body.text
        shot = client.get(f"/api/v1/runs/{run_id}/evidence/screenshot", headers=user)
        if shot.status_code == 403:
            assert "lacks the permission 'sessions:read'" in shot.json()["error"]["message"], shot.text
        result: dict[str, Any] = body.json()
        return result, shot.status_code

    admin_view = client.get(f"/api/v1/runs/{run_id}/evidence", headers=headers).json()
    assert admin_view["output"][0]["text"] == "password=hunter2" and admin_view["screenshot_url"]
    only_runs, status = seen("runs")
    assert only_runs["output"] is None and only_runs["screenshot_url"] is None and status == 403
    with_logs, status = seen("logs")
    assert with_logs["output"] == admin_view["output"] and with_logs["screenshot_url"] is None and status == 403
    with_screens, status = seen("screens")
    assert with_screens["output"] is None and with_screens["screenshot_url"] and status == 200
    elsewhere, status = seen("runs", "other-screens")
    assert elsewhere["output"] is None and elsewhere["screenshot_url"] is None and status == 403


def test_attach_sessions_and_window_managers_take_agents_admin_too(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    admin = bearer(admin_token)
    operator = bearer(make_user("o", ["operator"]))
    attach = {"name": "screen0", "agent": "pc-01", "kind": "attach", "display": ":0"}
    for body in (attach, {"name": "boxed", "agent": "pc-01", "window_manager": True}):
        refused = client.post(API, headers=operator, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["details"]["permission"] == "agents:admin"
        assert "lacks the permission 'agents:admin'" in refused.json()["error"]["message"]
    assert client.get(API, headers=admin).json()["items"] == []
    create(client, operator, "plain")
    boxed = client.patch(f"{API}/plain", headers=operator, json={"window_manager": True})
    assert boxed.status_code == 403 and "agents:admin" in boxed.text
    attached = client.patch(f"{API}/plain", headers=operator, json={"kind": "attach", "display": ":0"})
    assert attached.status_code == 403 and "agents:admin" in attached.text

    create(client, admin, "screen0", kind="attach", display=":0")
    for change in ({"display": ":1"}, {"agent": "pc-02"}, {"enabled": False}):
        answer = client.patch(f"{API}/screen0", headers=operator, json=change)
        assert answer.status_code == 403 and "agents:admin" in answer.text, (change, answer.text)
    described = client.patch(f"{API}/screen0", headers=operator, json={"description": "the front desk", "tags": ["x"]})
    assert described.status_code == 200, described.text
    assert client.patch(f"{API}/screen0", headers=admin, json={"display": ":1"}).status_code == 200


def test_a_session_name_starts_with_a_letter_or_a_digit(client: TestClient, admin_token: str) -> None:
    headers = bearer(admin_token)
    for name in (".hidden", "-flag", "_under", "a" * 65, ""):
        answer = client.post(API, headers=headers, json={"name": name, "agent": "pc-01"})
        assert answer.status_code == 422, (name, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == "name", answer.text
    for name in ("0desk", "Desk.1_a-b", "d" * 64):
        create(client, headers, name)


def test_evidence_images_are_capped_and_kept_only_for_a_robots_newest_bundles(
    context: Orchestrator, client: TestClient
) -> None:
    evidence = service_of(context).evidence
    shot = base64.b64encode(b"\xff\xd8 a small screenshot").decode()
    huge = base64.b64encode(os.urandom(9 * 2**20)).decode()
    evidence.keep(
        1,
        "clerk",
        "local",
        {
            "screenshot": {"content_type": "image/jpeg", "data": shot},
            "recording": {"content_type": "image/webp", "data": huge, "frames": 60},
        },
    )
    evidence.keep(2, "clerk", "local", {"screenshot": {"content_type": "image/png", "data": huge}})
    with context.store.transaction() as db:
        first, second = store_ops.evidence(db, 1), store_ops.evidence(db, 2)
        assert first is not None and second is not None
        assert first.screenshot == b"\xff\xd8 a small screenshot" and first.recording is None
        assert "the recording (9,437,184 bytes) was dropped" in first.facts["notes"][0]
        assert second.screenshot is None and "the screenshot" in second.facts["notes"][0]

    for run_id in range(3, 24):
        evidence.keep(
            run_id,
            "clerk",
            "local",
            {
                "output": [{"stream": "stdout", "text": f"run {run_id}"}],
                "screenshot": {"content_type": "image/jpeg", "data": shot},
            },
        )
    evidence.keep(24, "other", "local", {"screenshot": {"content_type": "image/jpeg", "data": shot}})
    with context.store.transaction() as db:
        with_images = [run_id for run_id in range(1, 25) if (row := store_ops.evidence(db, run_id)) and row.screenshot]
        assert with_images == [*range(4, 25)], "the newest 20 of clerk's, and other's own"
        older = store_ops.evidence(db, 3)
        assert older is not None and older.facts["output"] == [{"stream": "stdout", "text": "run 3"}]


def test_the_evidence_of_runs_that_ended_unseen_is_caught_up_at_an_agents_first_sync(
    client: TestClient, context: Orchestrator, admin_token: str
) -> None:
    headers = bearer(admin_token)
    evidence = service_of(context).evidence
    wait_until(lambda: "local" in evidence.caught_up, 20)
    assert client.portal is not None
    client.portal.call(evidence.stop)  # as if serve were down: nothing follows the runs' ends
    argv = [sys.executable, "-c", "import sys; print('unseen'); sys.exit(3)"]
    assert client.post("/api/v1/robots", headers=headers, json={"name": "clerk", "argv": argv}).status_code == 201

    def failed_run() -> int:
        run_id: int = client.post("/api/v1/robots/clerk/start", headers=headers).json()["id"]
        wait_until(lambda: client.get(f"/api/v1/runs/{run_id}", headers=headers).json()["state"] == "failed", 20)
        return run_id

    first = failed_run()
    assert client.get(f"/api/v1/runs/{first}/evidence", headers=headers).status_code == 404
    assert client.portal.call(evidence.catch_up, "local") == 1
    kept = client.get(f"/api/v1/runs/{first}/evidence", headers=headers).json()
    assert any("unseen" in line["text"] for line in kept["output"]), kept
    assert client.portal.call(evidence.catch_up, "local") == 0, "a run's evidence is fetched once"

    second = failed_run()
    evidence.caught_up.discard("local")  # a new process: its first sync of the agent catches up
    wait_until(lambda: client.get(f"/api/v1/runs/{second}/evidence", headers=headers).status_code == 200, 30)
