"""What fast workers use, on both stores: `items/next?count=N` leases up to N of the best items at once, each with a
lease of its own; `items/complete` completes several items in one call, each fenced by its own lease (a lost lease
refused alone); `?next=N` on a completion brings the next items leased; the plain calls keep their shapes. Many
workers draining a queue that way do each item exactly once. On PostgreSQL the hot path's held connections survive
a database that dropped them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from robofleet.orchestrator import Orchestrator
from robofleet.queues.leases import HOT_APPLICATION_NAME
from robofleet.queues.service import QueuesService
from tests.conftest import bearer
from tests.queues.conftest import QueuesApi


def leased(queues: QueuesApi, queue: str, **params: Any) -> list[dict[str, Any]]:
    answer = queues.request("POST", f"/{queue}/items/next", params=params)
    assert answer.status_code in (200, 204), answer.text
    return [] if answer.status_code == 204 else list(answer.json()["items"])


def test_next_with_count_leases_the_best_items_each_with_a_lease_of_its_own(
    client: TestClient, admin_token: str
) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("batch")
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    queues.add(
        "batch",
        {"reference": "old"},
        {"reference": "urgent", "priority": 5},
        {"reference": "due", "deadline": soon},
        {"reference": "young"},
        {"reference": "later", "postpone_until": soon},
    )
    first = leased(queues, "batch", count=3)
    assert [item["reference"] for item in first] == ["urgent", "due", "old"]
    assert all(item["state"] == "in_progress" and item["attempts"] == 1 for item in first)
    assert len({item["lease_id"] for item in first}) == 3
    rest = leased(queues, "batch", count=10)
    assert [item["reference"] for item in rest] == ["young"]  # "later" is not ready yet
    assert leased(queues, "batch", count=10) == []

    queues.add("batch", {"reference": "plain"})
    plain = queues.next("batch")  # without count: the item itself, as before
    assert plain is not None and plain["reference"] == "plain" and "items" not in plain
    for bad in (0, 101, "x"):
        assert queues.request("POST", "/batch/items/next", params={"count": bad}).status_code == 422
    assert queues.request("POST", "/nope/items/next", params={"count": 2}).status_code == 404


def test_each_lease_of_a_batch_is_fenced_alone(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("fences", retry_backoff_seconds=0)
    queues.add("fences", {"reference": "a"}, {"reference": "b"})
    a, b = leased(queues, "fences", count=2)
    crossed = queues.report("fences", {**a, "lease_id": b["lease_id"]}, "complete")
    assert crossed.status_code == 409 and crossed.json()["error"]["code"] == "lease_lost"
    assert queues.report("fences", b, "release").status_code == 200
    assert queues.report("fences", b, "complete").status_code == 409
    assert queues.report("fences", a, "extend", seconds=60).status_code == 200
    assert queues.report("fences", a, "complete", output={"ok": 1}).status_code == 200
    again = leased(queues, "fences", count=5)
    assert [item["reference"] for item in again] == ["b"] and again[0]["lease_id"] != b["lease_id"]


def test_complete_many_completes_what_it_holds_and_refuses_the_rest(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("many")
    queues.add("many", *({"reference": f"r{n}"} for n in range(4)))
    one, two, three, four = leased(queues, "many", count=4)
    reports = [
        {"id": one["id"], "lease_id": one["lease_id"], "output": {"n": 1}},
        {"id": two["id"], "lease_id": "not-mine"},
        {"id": 999_999, "lease_id": "x"},
        {"id": three["id"], "lease_id": three["lease_id"], "output": "three"},
        {"id": one["id"], "lease_id": one["lease_id"]},  # again: done already
    ]
    answer = queues.request("POST", "/many/items/complete", json={"items": reports})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["completed"] == [one["id"], three["id"]] and body["items"] == []
    assert [(r["id"], r["code"], r["state"]) for r in body["refused"]] == [
        (two["id"], "lease_lost", "in_progress"),
        (999_999, "not_found", None),
        (one["id"], "lease_lost", "done"),
    ]
    done = queues.item("many", one["id"])
    assert done["state"] == "done" and done["output"] == {"n": 1}
    assert [e["event"] for e in done["history"]] == ["completed"]
    assert queues.item("many", three["id"])["output"] == "three"
    assert queues.item("many", two["id"])["state"] == "in_progress"  # its holder still holds it

    big = {"items": [{"id": four["id"], "lease_id": four["lease_id"], "output": {"blob": "x" * 5000}}]}
    too_big = queues.request("POST", "/many/items/complete", json=big)
    assert too_big.status_code == 413 and queues.item("many", four["id"])["state"] == "in_progress"
    assert queues.request("POST", "/many/items/complete", json={"items": []}).status_code == 422
    assert queues.request("POST", "/nope/items/complete", json={"items": reports[:1]}).status_code == 404


def test_a_completion_with_next_answers_the_next_items_too(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("chain")
    queues.add("chain", *({"reference": f"c{n}"} for n in range(5)))
    item = queues.next("chain")
    assert item is not None
    plain = queues.report("chain", item, "complete")  # without next: the item done, as before
    assert plain.status_code == 200 and plain.json()["state"] == "done" and "completed" not in plain.json()

    item = queues.next("chain")
    assert item is not None
    answer = queues.request(
        "POST", f"/chain/items/{item['id']}/complete", params={"next": 1}, json={"lease_id": item["lease_id"]}
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["completed"]["id"] == item["id"] and body["completed"]["state"] == "done"
    (following,) = body["items"]
    assert following["reference"] == "c2" and following["state"] == "in_progress"

    reports = [{"id": following["id"], "lease_id": following["lease_id"]}]
    answer = queues.request("POST", "/chain/items/complete", params={"next": 5}, json={"items": reports})
    body = answer.json()
    assert body["completed"] == [following["id"]] and [i["reference"] for i in body["items"]] == ["c3", "c4"]
    last = body["items"][-1]
    stale = queues.request(
        "POST", f"/chain/items/{item['id']}/complete", params={"next": 1}, json={"lease_id": item["lease_id"]}
    )
    assert stale.status_code == 409  # a refused completion leases nothing
    assert queues.items("chain", state="in_progress") and len(queues.items("chain", state="in_progress")) == 2
    answer = queues.request(
        "POST", f"/chain/items/{last['id']}/complete", params={"next": 1}, json={"lease_id": last["lease_id"]}
    )
    assert answer.json()["items"] == []


def test_next_with_count_waits_for_the_first_item_then_takes_what_is_ready(
    client: TestClient, admin_token: str
) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("poll")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(leased, queues, "poll", count=5, wait=10)
        time.sleep(0.5)
        assert not waiting.done()
        queues.add("poll", {"reference": "a"}, {"reference": "b"})
        got = waiting.result(timeout=5)
    assert [item["reference"] for item in got] == ["a", "b"]
    started = time.monotonic()
    assert leased(queues, "poll", count=5, wait=0.3) == []
    assert time.monotonic() - started >= 0.25


def test_workers_leasing_and_completing_in_batches_do_each_item_once(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("drain", lease_seconds=120)
    added: list[int] = []
    for start in range(0, 600, 200):
        added += queues.add("drain", *({"reference": f"d{n}"} for n in range(start, start + 200)))["ids"]

    def work(size: int) -> list[int]:
        done: list[int] = []
        held = leased(queues, "drain", count=size)
        while held:
            reports = [{"id": item["id"], "lease_id": item["lease_id"]} for item in held]
            answer = queues.request("POST", "/drain/items/complete", params={"next": size}, json={"items": reports})
            assert answer.status_code == 200 and answer.json()["refused"] == [], answer.text
            done += answer.json()["completed"]
            held = answer.json()["items"]
        return done

    with ThreadPoolExecutor(6) as pool:
        done = [item for part in pool.map(work, (1, 3, 7, 10, 25, 100)) for item in part]
    assert sorted(done) == sorted(added)
    assert queues.stats("drain")["counts"]["done"] == 600


def test_the_in_process_api_leases_and_completes_in_batches(context: Orchestrator, client: TestClient) -> None:
    from robofleet.auth.principal import system_principal
    from robofleet.queues.schemas import Completion, NewItem, QueueCreate

    service = context.service("queues")
    assert isinstance(service, QueuesService)
    principal = system_principal("in-process")
    service.create_queue(principal, QueueCreate(name="inproc"))
    service.add_items(principal, "inproc", [NewItem(payload={"n": n}) for n in range(5)])
    got = service.leases.claim_many(principal, "inproc", 4)
    assert [item.payload["n"] for item in got] == [0, 1, 2, 3]
    done = service.leases.complete_many(
        principal, "inproc", [Completion(id=item.id, lease_id=item.lease_id, output=item.payload) for item in got]
    )
    assert done.completed == [item.id for item in got] and done.refused == []
    service.leases.close()  # closed: later calls take pooled connections, and still work
    last = service.leases.claim(principal, "inproc")
    assert last is not None
    assert service.leases.complete(principal, "inproc", last.id, last.lease_id, None).state == "done"


def test_the_hot_paths_held_connections_come_back_after_the_database_dropped_them(
    client: TestClient, admin_token: str, store_url: str
) -> None:
    if store_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: SQLite has no connection to lose")
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("dropped")
    queues.add("dropped", {"reference": "a"}, {"reference": "b"})
    first = leased(queues, "dropped", count=1)
    assert first and queues.report("dropped", first[0], "complete").status_code == 200
    dsn = store_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            [HOT_APPLICATION_NAME],
        ).fetchall()
    assert dropped, "the lease and the completion ran on held connections"
    time.sleep(1.2)  # a quiet spell: the held connection is checked before its next use, and replaced
    again = leased(queues, "dropped", count=1)
    assert [item["reference"] for item in again] == ["b"]
    assert queues.report("dropped", again[0], "complete").status_code == 200
