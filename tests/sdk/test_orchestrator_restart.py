"""A worker robot rides out a `kill -9` and restart of `robofleet serve`: its requests wait for the orchestrator
(the run outlives serve and is adopted), and every item is still done exactly once."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_until
from tests.queues.conftest import QueuesApi
from tests.robots.conftest import RobotsApi
from tests.sdk.conftest import Fleet

pytestmark = pytest.mark.slow


def test_a_worker_rides_out_a_restart_of_serve(fleet: Fleet) -> None:
    fleet.queues.create("invoices", lease_seconds=2, retry_backoff_seconds=0)
    invoices = [{"payload": {"number": f"INV-{n}", "amount": n, "seconds": 0.2}} for n in range(1, 21)]
    ids = fleet.queues.add("invoices", *invoices)["ids"]
    (run,) = fleet.workers("--idle", "2")  # an empty queue, not the time serve is away
    wait_until(lambda: len(fleet.queues.items("invoices", state="done")) >= 5, 20, message="five items done")
    fleet.serve.kill()
    time.sleep(1)
    fleet.serve.start(wait="/readyz")

    api = fleet.serve.api(fleet.token, timeout=30)
    fleet = Fleet(fleet.serve, fleet.token, QueuesApi(api), RobotsApi(api, wait_seconds=40, output_seconds=15))
    fleet.ended(run, "succeeded", seconds=60)
    items = {item["id"]: item for item in fleet.queues.items("invoices")}
    assert sorted(items) == sorted(ids) and {item["state"] for item in items.values()} == {"done"}
    # An item leased to an answer serve never sent comes back once its lease ran out: done once all the same.
    assert all(fleet.events("invoices", item_id).count("completed") == 1 for item_id in ids)
    fleet.said(run, "is unreachable", "answers again")
