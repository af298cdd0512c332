"""Long polls on both stores: `items/next?wait=S` answers the moment an item arrives (no sleep-and-retry), 204 once
S seconds passed without one; each item goes to one waiter."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import bearer
from tests.queues.conftest import QueuesApi


def timed_next(queues: QueuesApi, queue: str, wait: float) -> tuple[dict[str, Any] | None, float]:
    item = queues.next(queue, wait=wait)
    return item, time.monotonic()


def test_a_waiting_worker_is_answered_the_moment_an_item_is_added(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("live")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(timed_next, queues, "live", 10)
        time.sleep(0.5)  # the worker is waiting by now
        assert not waiting.done()
        queues.add("live", {"reference": "now"})
        added_at = time.monotonic()
        item, answered_at = waiting.result(timeout=5)
    assert item is not None and item["reference"] == "now"
    assert answered_at - added_at < 0.1, f"answered {answered_at - added_at:.3f} s after the add"


def test_a_wait_without_an_item_ends_with_204_after_its_time(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("quiet")
    started = time.monotonic()
    assert queues.next("quiet", wait=0.5) is None
    assert 0.45 <= time.monotonic() - started < 3
    assert queues.request("POST", "/nope/items/next", params={"wait": 1}).status_code == 404


def test_each_item_wakes_one_waiter(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("shared")
    with ThreadPoolExecutor(3) as pool:
        waiting = [pool.submit(timed_next, queues, "shared", 3) for _ in range(3)]
        time.sleep(0.5)
        queues.add("shared", {"reference": "a"}, {"reference": "b"})
        results = [future.result(timeout=10)[0] for future in waiting]
    got = sorted(item["reference"] for item in results if item is not None)
    assert got == ["a", "b"] and sum(item is None for item in results) == 1
