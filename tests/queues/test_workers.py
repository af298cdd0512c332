"""Real worker processes against a real `robofleet serve`, on both stores: several drain a queue with every item done
exactly once and none lost; a worker killed (-9) in the middle of an item leaves it to another once its lease ran
out; a `serve` killed (-9) loses no add or completion it acknowledged."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.conftest import StartServe, wait_until
from tests.queues.conftest import QueuesApi, StartWorker, serve_env

pytestmark = pytest.mark.slow
ITEMS = 10_000
WORKERS = 8


def test_workers_drain_a_queue_each_item_done_exactly_once(
    start_serve: StartServe, start_worker: StartWorker, store_url: str
) -> None:
    serve = start_serve(env=serve_env(store_url))
    token = serve.token()
    queues = QueuesApi(serve.api(token, timeout=60))
    queues.create("drain", lease_seconds=30)
    added: list[int] = []
    for start in range(0, ITEMS, 1000):
        batch = [{"reference": f"item-{n}", "priority": n % 3} for n in range(start, start + 1000)]
        added += queues.add("drain", *batch)["ids"]
    assert len(set(added)) == ITEMS
    workers = [start_worker(serve.url, token, "drain", "--idle", "2") for _ in range(WORKERS)]
    for worker in workers:
        worker.wait(timeout=240)
    done = [item for worker in workers for item in worker.noted("done")]
    assert sorted(done) == sorted(added), "every item done once, by one worker"
    assert all(worker.noted("lost") == [] for worker in workers)
    assert sum(1 for worker in workers if worker.noted("done")) > 1, "the work was shared"
    stats = queues.stats("drain")
    assert stats["counts"]["done"] == ITEMS and stats["counts"]["in_progress"] == 0
    assert sum(stats["throughput_per_minute"]) == ITEMS


def test_the_item_of_a_killed_worker_is_done_by_another(
    start_serve: StartServe, start_worker: StartWorker, store_url: str
) -> None:
    serve = start_serve(env=serve_env(store_url))
    token = serve.token()
    queues = QueuesApi(serve.api(token))
    queues.create("victim", lease_seconds=1.5, retry_backoff_seconds=0)
    (item_id,) = queues.add("victim", {"reference": "the-one"})["ids"]
    doomed = start_worker(serve.url, token, "victim", "--hold", "600")
    wait_until(lambda: doomed.noted("leased") == [item_id], 15, message=lambda: doomed.lines())
    doomed.kill()
    killed_at = time.monotonic()
    rescuer = start_worker(serve.url, token, "victim", "--idle", "5")
    wait_until(lambda: rescuer.noted("done") == [item_id], 15, message=lambda: rescuer.lines())
    assert time.monotonic() - killed_at < 6  # the lease (1.5 s) and the leader's next look (0.2 s)
    item = queues.item("victim", item_id)
    assert item["state"] == "done" and item["attempts"] == 2 and item["output"] == "the-one"
    assert [event["event"] for event in item["history"]] == ["expired", "completed"]


def test_a_killed_serve_loses_no_acknowledged_add_or_completion(start_serve: StartServe, store_url: str) -> None:
    serve = start_serve(env=serve_env(store_url))
    token = serve.token()
    QueuesApi(serve.api(token)).create("durable", lease_seconds=1, retry_backoff_seconds=0)
    added: list[int] = []
    completed: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        """Adds and completions until serve dies; each noted only once serve acknowledged it."""
        with httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as api:
            queues = QueuesApi(api)
            n = 0
            while not stop.is_set():
                try:
                    answer = queues.request("POST", "/durable/items", json={"items": [{"reference": f"r{n}"}] * 5})
                    if answer.status_code == 201:
                        added.extend(answer.json()["ids"])
                    n += 1
                    leased = queues.request("POST", "/durable/items/next")
                    if (
                        leased.status_code == 200
                        and queues.report("durable", leased.json(), "complete").status_code == 200
                    ):
                        completed.append(leased.json()["id"])
                except httpx.TransportError:
                    return

    thread = threading.Thread(target=traffic)
    thread.start()
    wait_until(lambda: len(completed) >= 50, 30)
    serve.kill()
    thread.join(timeout=30)
    stop.set()
    serve.start(wait="/readyz")
    queues = QueuesApi(serve.api(token))
    states = {}
    cursor = None
    while True:
        page = queues.request("GET", "/durable/items", params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        states.update({item["id"]: item["state"] for item in page.json()["items"]})
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert set(added) <= set(states), "every acknowledged add is stored"
    assert all(states[item_id] == "done" for item_id in completed), "every acknowledged completion is stored"
    # Items leased when serve died come back once their lease ran out, after the restart too.
    wait_until(lambda: queues.stats("durable")["counts"]["in_progress"] == 0, 15)
