"""Two `serve` replicas on one PostgreSQL: a worker waiting on one is answered the moment an item is added through
the other (a notice, not a poll), and only the leader expires leases, which either replica hands out."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import StartServe, wait_until
from tests.queues.conftest import QueuesApi, serve_env

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)]


def test_an_item_added_on_one_replica_wakes_a_worker_waiting_on_the_other(
    start_serve: StartServe, store_url: str
) -> None:
    first = start_serve(env=serve_env(store_url))
    token = first.token()
    second = start_serve(env=serve_env(store_url))
    adder, waiter = QueuesApi(first.api(token)), QueuesApi(second.api(token))
    adder.create("shared", lease_seconds=1, retry_backoff_seconds=0)
    time.sleep(0.5)  # the second replica listens by now

    def wait_for_item() -> tuple[float, dict[str, object] | None]:
        item = waiter.next("shared", wait=10)
        return time.monotonic(), item

    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(wait_for_item)
        time.sleep(0.5)
        adder.add("shared", {"reference": "cross"})
        added_at = time.monotonic()
        answered_at, item = waiting.result(timeout=15)
    assert item is not None and item["reference"] == "cross"
    assert answered_at - added_at < 0.2, f"answered {answered_at - added_at:.3f} s after the add"
    # Its lease, handed out by the second replica, expires through whichever replica leads.
    again = wait_until(lambda: adder.next("shared"), 10)
    assert again["id"] == item["id"] and again["attempts"] == 2
