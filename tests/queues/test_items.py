"""Items on both stores: added in batches (duplicates of a unique queue refused one by one), leased in the order of
priority, deadline and age, postponed until their time; listed, filtered, exported, retried and deleted in bulk,
each with its history; a queue's figures."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from robofleet.orchestrator import Orchestrator
from robofleet.queues.models import QueueItem
from robofleet.queues.service import QueuesService
from tests.conftest import bearer
from tests.queues.conftest import QueuesApi


def test_a_batch_is_added_with_duplicates_of_a_unique_queue_refused(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("unique", unique_references=True)
    first = queues.add("unique", {"reference": "A"}, {"reference": "B"})
    assert len(first["ids"]) == 2 and first["refused"] == []
    second = queues.add("unique", {"reference": "C"}, {"reference": "A"}, {"reference": "C"}, {}, {"reference": "D"})
    assert [(r["index"], r["reason"]) for r in second["refused"]] == [
        (1, "duplicate_reference"),
        (2, "duplicate_reference"),
    ]
    assert "first at index 0" in second["refused"][1]["message"]
    assert len(second["ids"]) == 3 and second["ids"] == sorted(second["ids"])
    listed = {item["id"]: item["reference"] for item in queues.items("unique")}
    assert [listed[i] for i in second["ids"]] == ["C", None, "D"]

    # A deleted item frees its reference; a queue that is not unique takes any.
    assert queues.request("POST", "/unique/items/delete", json={"ids": [first["ids"][0]]}).json()["count"] == 1
    assert queues.add("unique", {"reference": "A"})["refused"] == []
    queues.create("plain")
    assert len(queues.add("plain", {"reference": "A"}, {"reference": "A"})["ids"]) == 2
    made_unique = queues.request("PATCH", "/plain", json={"unique_references": True})
    assert made_unique.status_code == 409 and made_unique.json()["error"]["details"]["references"] == ["A"]


def test_items_are_leased_by_priority_then_deadline_then_age(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("ordered")
    soon = datetime.now(UTC) + timedelta(hours=1)
    later = soon + timedelta(hours=1)
    queues.add(
        "ordered",
        {"reference": "low-old"},
        {"reference": "high-no-deadline", "priority": 5},
        {"reference": "high-later", "priority": 5, "deadline": later.isoformat()},
        {"reference": "high-soon", "priority": 5, "deadline": soon.isoformat()},
        {"reference": "low-new"},
        {"reference": "postponed", "priority": 9, "postpone_until": later.isoformat()},
    )
    order = []
    while (item := queues.next("ordered")) is not None:
        assert item["state"] == "in_progress" and item["attempts"] == 1 and item["lease_id"]
        order.append(item["reference"])
    assert order == ["high-soon", "high-later", "high-no-deadline", "low-old", "low-new"]


def test_a_postponed_item_is_leased_once_its_time_has_come(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("later")
    at = datetime.now(UTC) + timedelta(seconds=0.6)
    queues.add("later", {"reference": "p", "postpone_until": at.isoformat()})
    assert queues.next("later") is None
    item = queues.next("later", wait=5)  # woken at the stored time, not by a poll
    assert item is not None and item["reference"] == "p"
    assert datetime.now(UTC) >= at


def test_items_are_listed_filtered_and_shown_with_their_history(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("hist", max_retries=1, retry_backoff_seconds=0)
    queues.add("hist", *({"reference": f"inv-{n}", "payload": {"n": n}} for n in range(5)), {"reference": "other"})
    item = queues.next("hist")
    assert item is not None
    assert queues.report("hist", item, "fail", kind="application", message="timeout").json()["state"] == "retry"
    again = queues.next("hist")
    assert again is not None and again["id"] == item["id"] and again["attempts"] == 2
    assert queues.report("hist", again, "complete", output={"total": 3}).json()["state"] == "done"

    detail = queues.item("hist", item["id"])
    assert detail["state"] == "done" and detail["output"] == {"total": 3} and detail["payload"] == {"n": 0}
    history = [(e["event"], e["from_state"], e["to_state"], e["attempt"]) for e in detail["history"]]
    assert history == [("failed", "in_progress", "retry", 1), ("completed", "in_progress", "done", 2)]
    assert detail["history"][0]["error"] == "timeout" and detail["history"][0]["actor"].startswith("root-admin")

    assert [i["reference"] for i in queues.items("hist", reference_prefix="inv-")] == [
        f"inv-{n}" for n in range(4, -1, -1)
    ]
    assert [i["id"] for i in queues.items("hist", state="done")] == [item["id"]]
    assert len(queues.items("hist", state=["new", "done"])) == 6
    page = queues.request("GET", "/hist/items", params={"limit": 4}).json()
    rest = queues.request("GET", "/hist/items", params={"limit": 4, "cursor": page["next_cursor"]}).json()
    assert len(page["items"]) == 4 and len(rest["items"]) == 2 and rest["next_cursor"] is None
    future = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert queues.items("hist", since=future) == []
    assert queues.request("GET", "/hist/items/999999").status_code == 404


def test_failed_and_abandoned_items_are_retried_and_items_deleted_in_bulk(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("bulk", max_retries=0)
    ids = queues.add("bulk", *({"reference": f"r{n}"} for n in range(4)))["ids"]
    outcomes = {}
    for kind in ("business", "application", None):
        item = queues.next("bulk")
        assert item is not None
        if kind is None:
            queues.report("bulk", item, "complete")
        else:
            queues.report("bulk", item, "fail", kind=kind, message=f"{kind} error")
        outcomes[item["id"]] = queues.item("bulk", item["id"])["state"]
    assert sorted(outcomes.values()) == ["abandoned", "done", "failed"]
    failed = next(i for i, s in outcomes.items() if s == "failed")
    done = next(i for i, s in outcomes.items() if s == "done")
    new = next(i for i in ids if i not in outcomes)

    # Items named by id that the filter's other conditions leave out are said so, not silently counted as 0.
    narrowed = queues.request("POST", "/bulk/items/retry", json={"ids": [failed], "reference_prefix": "x"})
    assert narrowed.json() == {"count": 0, "skipped": [{"id": failed, "state": "failed", "reason": "filtered_out"}]}
    retried = queues.request("POST", "/bulk/items/retry", json={})
    assert retried.json() == {"count": 2, "skipped": []}  # the failed and the abandoned, not the done nor the new one
    states = {item["id"]: item["state"] for item in queues.items("bulk")}
    assert sorted(states.values()) == ["done", "new", "retry", "retry"]
    again = queues.item("bulk", failed)
    assert again["attempts"] == 0 and again["history"][-1]["event"] == "retried"

    # Named items that cannot be retried (done, waiting already, unknown) come back with their state or reason.
    named = queues.request("POST", "/bulk/items/retry", json={"ids": [done, new, failed, 999_999, done]})
    assert named.status_code == 200 and named.json() == {
        "count": 0,
        "skipped": [
            {"id": done, "state": "done", "reason": "wrong_state"},
            {"id": new, "state": "new", "reason": "wrong_state"},
            {"id": failed, "state": "retry", "reason": "wrong_state"},
            {"id": 999_999, "state": None, "reason": "not_found"},
        ],
    }
    assert queues.item("bulk", done)["state"] == "done"

    deleted = queues.request("POST", "/bulk/items/delete", json={"state": ["retry", "new"]})
    assert deleted.json() == {"count": 3, "skipped": []}
    assert {item["state"] for item in queues.items("bulk")} == {"deleted", "done"}
    assert queues.next("bulk") is None
    once_more = queues.request("POST", "/bulk/items/delete", json={"ids": [new, done]}).json()
    assert once_more == {"count": 1, "skipped": [{"id": new, "state": "deleted", "reason": "wrong_state"}]}
    audit = client.get("/api/v1/audit", headers=bearer(admin_token), params={"action": "queue.retry"}).json()
    assert [(r["details"]["count"], r["details"]["skipped"]) for r in audit["items"]] == [(0, 4), (2, 0), (0, 1)]


def test_items_are_exported_as_csv_and_ndjson(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("out")
    queues.add("out", {"reference": "=cmd()", "payload": {"city": "Zürich"}}, {"reference": "b", "priority": 2})
    ndjson = queues.request("GET", "/out/items/export", params={"format": "ndjson"})
    assert ndjson.status_code == 200 and ndjson.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in ndjson.text.splitlines()]
    assert [line["reference"] for line in lines] == ["=cmd()", "b"] and lines[0]["payload"] == {"city": "Zürich"}
    exported = queues.request("GET", "/out/items/export", params={"format": "csv", "reference_prefix": "b"})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(row["reference"], row["priority"], row["state"]) for row in rows] == [("b", "2", "new")]
    both = list(csv.DictReader(io.StringIO(queues.request("GET", "/out/items/export?format=csv").text)))
    assert both[0]["reference"] == "'=cmd()" and json.loads(both[0]["payload"]) == {"city": "Zürich"}
    assert queues.request("GET", "/out/items/export", params={"format": "xml"}).status_code == 422
    assert queues.request("GET", "/nope/items/export").status_code == 404


def test_stats_count_states_throughput_handling_sla_and_the_oldest_waiting(
    client: TestClient, admin_token: str
) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("figures", sla_minutes=1)
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    queues.add(
        "figures", *({"reference": f"r{n}", "priority": 1} for n in range(4)), {"reference": "late", "deadline": past}
    )
    for _ in range(3):
        item = queues.next("figures")
        assert item is not None
        queues.report("figures", item, "complete")
    stats = queues.stats("figures")
    assert stats["counts"] == {
        "new": 2,
        "in_progress": 0,
        "done": 3,
        "failed": 0,
        "retry": 0,
        "abandoned": 0,
        "deleted": 0,
    }
    assert len(stats["throughput_per_minute"]) == 60 and sum(stats["throughput_per_minute"]) == 3
    assert stats["throughput_per_minute"][-1] >= 1
    assert stats["average_handling_seconds"] is not None and 0 <= stats["p95_handling_seconds"] < 5
    assert stats["past_sla"] == 0 and stats["past_deadline"] == 1
    assert stats["oldest_waiting_seconds"] is not None and stats["oldest_waiting_seconds"] < 30
    empty = queues.create("empty")
    assert empty and queues.stats("empty")["oldest_waiting_seconds"] is None


def test_concurrent_adds_store_each_unique_reference_once(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("race", unique_references=True)
    references = [f"ref-{n}" for n in range(200)]

    def add_all(offset: int) -> tuple[int, int]:
        """Every reference, in batches of 50, each client starting elsewhere in the list."""
        turned = references[offset:] + references[:offset]
        ids = refused = 0
        for start in range(0, len(turned), 50):
            answer = queues.add("race", *({"reference": ref} for ref in turned[start : start + 50]))
            ids += len(answer["ids"])
            refused += len(answer["refused"])
        return ids, refused

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(add_all, range(0, 200, 25)))
    assert sum(ids for ids, _ in results) == 200
    assert sum(refused for _, refused in results) == 7 * 200
    assert sorted(item["reference"] for item in queues.items("race")) == sorted(references)


def test_the_figures_are_prometheus_metrics(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("scraped", sla_minutes=60)
    queues.add("scraped", {"reference": "a"}, {"reference": "b"})
    assert queues.next("scraped") is not None
    answer = client.get("/metrics", headers=bearer(admin_token))  # served by /metrics, as a scraper reads it
    assert answer.status_code == 200
    text = answer.text
    assert 'robofleet_queue_items{queue="scraped",state="new"} 1.0' in text
    assert 'robofleet_queue_items{queue="scraped",state="in_progress"} 1.0' in text
    assert 'robofleet_queue_items_past_sla{queue="scraped"} 0.0' in text
    assert 'robofleet_queue_oldest_waiting_seconds{queue="scraped"}' in text


def test_retention_deletes_items_finished_longer_ago_than_the_queue_keeps_them(
    client: TestClient, admin_token: str, context: Orchestrator
) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("kept", retention_days=7)
    ids = queues.add("kept", *({"reference": f"r{n}"} for n in range(3)))["ids"]
    for _ in range(2):
        item = queues.next("kept")
        assert item is not None
        queues.report("kept", item, "complete")
    service = context.service("queues")
    assert isinstance(service, QueuesService)
    assert service.apply_retention() == 0  # finished just now: kept
    with context.store.transaction() as session:  # the first one finished eight days ago
        session.execute(
            update(QueueItem).where(QueueItem.id == ids[0]).values(finished_at=datetime.now(UTC) - timedelta(days=8))
        )
    assert service.apply_retention() == 1
    assert sorted(item["id"] for item in queues.items("kept")) == ids[1:]
    assert queues.request("GET", f"/kept/items/{ids[0]}").status_code == 404
    audit = client.get("/api/v1/audit", headers=bearer(admin_token), params={"action": "queue.retention"})
    assert [record["details"] for record in audit.json()["items"]] == [{"deleted": 1}]
