"""The sync loop tells the agent which of its events are stored already (the agent process's instance and the highest
event number stored), so that a sync's answer carries only new ones: the in-process app's local agent keeping a real
Xvfb session, on both stores."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from fastapi.testclient import TestClient

from robofleet.orchestrator import Orchestrator
from robofleet.sessions.service import SessionsService
from tests.conftest import bearer, wait_until

pytestmark = pytest.mark.slow


def test_a_sync_asks_only_for_the_events_not_stored_yet(
    client: TestClient, context: Orchestrator, admin_token: str
) -> None:
    headers = bearer(admin_token)
    service = context.service("sessions")
    assert isinstance(service, SessionsService)
    made = client.post("/api/v1/sessions", headers=headers, json={"name": "desk", "width": 640, "height": 480})
    assert made.status_code == 201, made.text

    def healthy() -> dict[str, Any] | None:
        session: dict[str, Any] = client.get("/api/v1/sessions/desk", headers=headers).json()
        return session if session["state"] == "healthy" else None

    wait_until(healthy, 30)
    specs = service._specs_of(["local"])["local"]
    args = wait_until(lambda: (found := service.sync_args("local", specs)).get("after_seq") and found, 15)
    assert args["instance"] and args["after_seq"] >= 1 and args["sessions"] == specs, args

    def sync(sent: dict[str, Any]) -> dict[str, Any]:
        assert client.portal is not None
        answer: dict[str, Any] = client.portal.call(
            functools.partial(service.hub.command, "local", "session.sync", sent, within=10)
        )
        return answer

    everything = sync({"sessions": specs})
    assert everything["instance"] == args["instance"]
    assert everything["sessions"][0]["events"], "without them, every event comes"
    only_new = sync(args)
    assert [status["events"] for status in only_new["sessions"]] == [[]], only_new

    history = client.get("/api/v1/sessions/desk/events", headers=headers).json()["items"]
    from_agent = [event for event in history if event["source"] == "agent:local"]
    assert from_agent and len(from_agent) <= len(everything["sessions"][0]["events"]), "each event stored once"
