"""Queues through the REST API on both stores: created, read, changed, deleted, every change audited; bad input
refused with its field and reason, nothing half-written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from robofleet.auth.principal import system_principal
from robofleet.errors import ConfigError
from robofleet.orchestrator import Orchestrator
from robofleet.queues.service import QueuesService
from robofleet.settings.model import Settings
from tests.conftest import MakeUser, bearer
from tests.queues.conftest import QueuesApi


def test_a_queue_is_created_read_changed_and_deleted(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    made = queues.create("invoices", lease_seconds=60, unique_references=True, sla_minutes=30, tags=["finance"])
    assert made["max_retries"] == 3 and made["retry_backoff_seconds"] == 30 and made["retention_days"] == 30
    assert made["unique_references"] is True and made["tags"] == ["finance"] and made["from_config"] is False
    assert queues.request("GET", "/invoices").json()["lease_seconds"] == 60
    queues.create("payroll")
    first = queues.request("GET", "", params={"limit": 1}).json()
    assert [q["name"] for q in first["items"]] == ["invoices"] and first["next_cursor"]
    rest = queues.request("GET", "", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [q["name"] for q in rest["items"]] == ["payroll"] and rest["next_cursor"] is None

    changed = queues.request("PATCH", "/invoices", json={"max_retries": 0, "sla_minutes": None})
    assert changed.status_code == 200, changed.text
    assert changed.json()["max_retries"] == 0 and changed.json()["sla_minutes"] is None
    assert changed.json()["tags"] == ["finance"]

    queues.add("invoices", {"reference": "A-1"})
    busy = queues.request("DELETE", "/invoices")
    assert busy.status_code == 409 and busy.json()["error"]["details"]["unfinished"] == 1
    assert queues.request("DELETE", "/invoices", params={"force": True}).status_code == 204
    assert queues.request("GET", "/invoices").status_code == 404
    assert queues.request("GET", "/invoices/items").status_code == 404
    audit = client.get("/api/v1/audit", headers=bearer(admin_token), params={"target": "invoices"}).json()["items"]
    assert {"queue.create", "queue.update", "queue.add", "queue.delete"} <= {record["action"] for record in audit}
    assert any(record["action"] == "queue.delete" and record["outcome"] == "failed" for record in audit)


def test_bad_queues_are_refused_naming_the_field(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    cases: dict[str, dict[str, Any]] = {
        "lease_seconds": {"name": "q", "lease_seconds": 0},
        "max_retries": {"name": "q", "max_retries": -1},
        "name": {"name": "no spaces"},
        "retention_days": {"name": "q", "retention_days": 0},
        "extra": {"name": "q", "extra": 1},
    }
    for field, body in cases.items():
        answer = queues.request("POST", "", json=body)
        assert answer.status_code == 422, (field, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == field, answer.text
    queues.create("q")
    assert queues.request("POST", "", json={"name": "q"}).status_code == 409
    assert queues.request("PATCH", "/q", json={"lease_seconds": None}).status_code == 422
    assert queues.request("PATCH", "/nope", json={"max_retries": 1}).status_code == 404
    assert queues.request("GET", "").json()["items"][0]["lease_seconds"] == 300


def test_bad_items_are_refused_naming_the_item_and_nothing_is_added(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("q")
    good = {"reference": "ok", "payload": {"n": 1}}
    cases: dict[str, dict[str, Any]] = {
        "items.1.priority": {"priority": -1},
        "items.1.deadline": {"deadline": "2030-01-01T00:00:00"},  # no offset: whose midnight?
        "items.1.payload": {"payload": [1, 2]},
        "items.1.reference": {"reference": "x" * 300},
        "items.1.colour": {"colour": "red"},
    }
    for field, bad in cases.items():
        answer = queues.request("POST", "/q/items", json={"items": [good, bad]})
        assert answer.status_code == 422, (field, answer.text)
        assert answer.json()["error"]["details"][0]["field"] == field, answer.text
    too_big = queues.request("POST", "/q/items", json={"items": [good, {"payload": {"blob": "x" * 5000}}]})
    assert too_big.status_code == 413, too_big.text
    error = too_big.json()["error"]
    assert error["details"]["field"] == "items.1.payload" and "max_payload_bytes" in error["message"]
    empty = queues.request("POST", "/q/items", json={"items": []})
    assert empty.status_code == 422
    unknown = queues.request("POST", "/nope/items", json={"items": [good]})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    over = queues.request("POST", "/q/items", json={"items": [{}] * 10_001})
    assert over.status_code == 422 and "max_batch" in over.json()["error"]["message"]
    assert queues.items("q") == []
    assert queues.request("POST", "/q/items/next", params={"wait": -1}).status_code == 422
    assert queues.request("POST", "/q/items/next", params={"wait": 1000}).status_code == 422
    assert queues.request("GET", "/q/items", params={"since": "yesterday"}).status_code == 422
    assert queues.request("POST", "/q/items/delete", json={}).status_code == 422


def test_permissions_split_looking_defining_and_working(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    QueuesApi(client, bearer(admin_token)).create("q")
    viewer = QueuesApi(client, bearer(make_user("v", ["viewer"])))
    robot = QueuesApi(client, bearer(make_user("r", ["robot"])))
    worker_only = QueuesApi(client, bearer(make_user("w", ["robot"], scopes=["queues:work", "queues:read"])))
    assert viewer.request("GET", "/q").status_code == 200
    assert viewer.request("POST", "/q/items", json={"items": [{}]}).status_code == 403
    assert viewer.request("POST", "/q/items/next").status_code == 403
    robot.add("q", {"reference": "r1"})
    assert worker_only.request("POST", "/q/items", json={"items": [{}]}).status_code == 403
    item = worker_only.next("q")
    assert item is not None and item["leased_by"].startswith("w (token ")
    assert worker_only.report("q", item, "complete").status_code == 200


def test_queues_of_the_settings_file_are_applied_at_every_start(context: Orchestrator) -> None:
    service = QueuesService(context)
    declared = Settings(queues=[{"name": "from-file", "lease_seconds": 5, "max_retries": 1}]).queues
    service.apply_config(declared)
    service.apply_config(declared)  # a second start changes nothing and fails on nothing
    queue = service.get_queue(system_principal(), "from-file")
    assert queue.from_config and queue.lease_seconds == 5 and queue.max_retries == 1
    bad = Settings(queues=[{"name": "bad", "lease_seconds": 0}]).queues
    with pytest.raises(ConfigError, match=r"queues\.bad\.lease_seconds"):
        service.apply_config(bad)
