"""A queue's SLA on both stores, from real items: one added "two minutes ago" (its created_at written back in the
store, rather than waiting for a 1-minute SLA to pass) counts as past the SLA in QueuesService.figures, which the
alerts, the metrics and the panel read, in the queue's stats, and raises the queue_past_sla alert through the real
detection; done, it counts no more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from robofleet.auth.principal import system_principal
from robofleet.orchestrator import Orchestrator
from robofleet.queues.models import QueueItem
from robofleet.queues.service import QueuesService
from tests.conftest import bearer, wait_until
from tests.queues.conftest import QueuesApi


def test_an_item_older_than_the_sla_is_counted_past_it_and_alerted(
    client: TestClient, admin_token: str, context: Orchestrator
) -> None:
    headers = bearer(admin_token)
    queues = QueuesApi(client, headers)
    queues.create("late-queue", sla_minutes=1)
    queues.create("no-sla")
    late, fresh, finished = queues.add(
        "late-queue",
        {"reference": "late", "priority": 5},
        {"reference": "fresh"},
        {"reference": "finished", "priority": 9},
    )["ids"]
    [old_without_sla] = queues.add("no-sla", {"reference": "old"})["ids"]
    two_minutes_ago = datetime.now(UTC) - timedelta(minutes=2)
    with context.store.transaction() as session:
        session.execute(
            update(QueueItem)
            .where(QueueItem.id.in_([late, finished, old_without_sla]))
            .values(created_at=two_minutes_ago)
        )
    # The back-dated "finished" item is done: only unfinished items count against the SLA.
    item = queues.next("late-queue")
    assert item is not None and item["id"] == finished
    assert queues.report("late-queue", item, "complete").status_code == 200
    assert {i["id"]: i["state"] for i in queues.items("late-queue")} == {late: "new", fresh: "new", finished: "done"}

    service = context.service("queues")
    assert isinstance(service, QueuesService)
    figures = {stats.queue: stats for stats in service.figures(system_principal("test"))}
    assert figures["late-queue"].past_sla == 1 and figures["no-sla"].past_sla == 0
    assert figures["late-queue"].oldest_waiting_seconds is not None
    assert figures["late-queue"].oldest_waiting_seconds >= 119
    assert queues.stats("late-queue")["past_sla"] == 1
    metrics = client.get("/metrics", headers=headers).text
    assert 'robofleet_queue_items_past_sla{queue="late-queue"} 1.0' in metrics

    rule = {"name": "late", "kind": "queue_past_sla", "match": "late-*", "threshold": 1}
    assert client.post("/api/v1/alerts/rules", headers=headers, json=rule).status_code == 201

    def raised() -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = client.get("/api/v1/alerts", headers=headers).json()["items"]
        return alerts  # empty (falsy) until the alert is raised

    [alert] = wait_until(raised, 30)  # the leader's detection loop, every alerting.check_seconds
    assert alert["kind"] == "queue_past_sla" and alert["subject"] == "late-queue"
    assert alert["facts"] == {"queue": "late-queue", "past_sla": 1}

    # Worked to the end, the late item no longer counts.
    item = queues.next("late-queue")
    assert item is not None and item["id"] == late
    assert queues.report("late-queue", item, "complete").status_code == 200
    assert queues.stats("late-queue")["past_sla"] == 0
