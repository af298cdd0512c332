"""Leases on both stores: every report is fenced by the lease (409 with the item's state once it expired or another
worker took the item); extend and release; failures retried with backoff, abandoned past max_retries, or final
(business); an expired lease returns its item to retry, or abandons it, through the leader's housekeeping."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer, wait_until
from tests.queues.conftest import QueuesApi


def test_a_report_is_fenced_by_the_lease(client: TestClient, admin_token: str, make_user: MakeUser) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    other = QueuesApi(client, bearer(make_user("other-worker", ["robot"])))
    queues.create("fenced", lease_seconds=0.5, retry_backoff_seconds=0)
    queues.add("fenced", {"reference": "one"})
    first = queues.next("fenced")
    assert first is not None
    wrong = queues.report("fenced", {**first, "lease_id": "not-mine"}, "complete")
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "lease_lost"
    assert wrong.json()["error"]["details"]["state"] == "in_progress"

    time.sleep(0.6)  # the lease runs out: a late report is refused, whether the housekeeping looked yet or not
    late = queues.report("fenced", first, "complete", output={"late": True})
    assert late.status_code == 409 and late.json()["error"]["details"]["state"] in ("in_progress", "retry")
    taken = wait_until(lambda: other.next("fenced"), 5)  # back to retry by the housekeeping, leased by another
    assert taken["id"] == first["id"] and taken["attempts"] == 2 and taken["leased_by"].startswith("other-worker")
    stale = queues.report("fenced", first, "complete")
    assert stale.status_code == 409 and "another worker" in stale.json()["error"]["message"]
    assert other.report("fenced", taken, "complete").status_code == 200
    done = queues.report("fenced", taken, "complete")
    assert done.status_code == 409 and done.json()["error"]["details"]["state"] == "done"
    history = queues.item("fenced", first["id"])["history"]
    assert [(e["event"], e["to_state"], e["actor"]) for e in history] == [
        ("expired", "retry", "housekeeping"),
        ("completed", "done", history[1]["actor"]),
    ]
    assert history[0]["leased_by"].startswith("root-admin") and "expired" in history[0]["error"]
    assert queues.report("fenced", {"id": 999999, "lease_id": "x"}, "complete").status_code == 404


def test_extend_keeps_the_item_and_release_gives_it_back(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("held", lease_seconds=0.5)
    queues.add("held", {"reference": "one"})
    item = queues.next("held")
    assert item is not None
    for _ in range(3):
        time.sleep(0.3)
        extended = queues.report("held", item, "extend", seconds=0.5)
        assert extended.status_code == 200, extended.text
        assert datetime.fromisoformat(extended.json()["lease_expires_at"]) > datetime.fromisoformat(
            item["lease_expires_at"]
        )
    assert queues.report("held", item, "extend", seconds=0).status_code == 422
    released = queues.report("held", item, "release")
    assert released.status_code == 200 and released.json()["state"] == "new" and released.json()["attempts"] == 0
    assert queues.report("held", item, "complete").status_code == 409
    again = queues.next("held")
    assert again is not None and again["id"] == item["id"] and again["attempts"] == 1
    assert queues.item("held", item["id"])["history"][-1]["event"] == "released"


def test_application_failures_are_retried_with_backoff_then_abandoned(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    # Backoffs of seconds, not tenths: "not before its backoff" must hold on a loaded machine too.
    queues.create("flaky", max_retries=2, retry_backoff_seconds=1.5)
    queues.add("flaky", {"reference": "one"})
    waits = []
    for attempt in (1, 2, 3):
        item = queues.next("flaky", wait=10)
        assert item is not None and item["attempts"] == attempt
        failed = queues.report("flaky", item, "fail", kind="application", message=f"try {attempt}").json()
        if attempt < 3:
            assert failed["state"] == "retry"
            waits.append((datetime.fromisoformat(failed["ready_at"]) - datetime.now().astimezone()).total_seconds())
            assert queues.next("flaky") is None  # not before its backoff
    assert failed["state"] == "abandoned" and failed["error_kind"] == "application" and failed["error"] == "try 3"
    assert 0.5 < waits[0] <= 1.5 < waits[1] <= 3.0  # doubled
    assert failed["finished_at"] is not None


def test_a_business_failure_is_final(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("strict", max_retries=5)
    queues.add("strict", {"reference": "one"})
    item = queues.next("strict")
    assert item is not None
    failed = queues.report("strict", item, "fail", kind="business", message="invoice refused").json()
    assert failed["state"] == "failed" and failed["error_kind"] == "business"
    assert queues.next("strict") is None
    bad = queues.report("strict", item, "fail", kind="cosmic", message="?")
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "kind"


def test_an_expired_lease_past_max_retries_abandons_the_item(client: TestClient, admin_token: str) -> None:
    queues = QueuesApi(client, bearer(admin_token))
    queues.create("short", max_retries=0, lease_seconds=0.2)
    queues.add("short", {"reference": "one"})
    item = queues.next("short")
    assert item is not None
    abandoned = wait_until(lambda: queues.item("short", item["id"])["state"] == "abandoned", 5)
    assert abandoned
    detail = queues.item("short", item["id"])
    assert detail["history"][-1]["event"] == "expired" and detail["lease_expires_at"] is None
    assert queues.stats("short")["counts"]["abandoned"] == 1
