"""The processor on both stores: order, concurrency bound, batches, waiting, idempotency, cancelling."""

from __future__ import annotations

import concurrent.futures
import itertools
import time

from fastapi.testclient import TestClient

from tests.activities.conftest import Recorded, submit
from tests.conftest import bearer, wait_until


def wait_all(client: TestClient, token: str, ids: list[int], seconds: float = 30) -> list[dict]:  # type: ignore[type-arg]
    return [client.get(f"/api/v1/activities/{i}", params={"wait": seconds}, headers=bearer(token)).json() for i in ids]


def test_echo_round_trip(client: TestClient, admin_token: str) -> None:
    answer = submit(client, admin_token, {"action": "system.echo", "args": {"message": "hello"}}, wait=10)
    activity = answer["activities"][0]
    assert answer["ids"] == [activity["id"]]
    assert activity["state"] == "succeeded" and activity["result"] == {"message": "hello"}
    assert activity["requested_by"].startswith("root-admin") and activity["mode"] == "sync"
    assert activity["created_at"] <= activity["started_at"] <= activity["finished_at"]
    stored = client.get(f"/api/v1/activities/{activity['id']}", headers=bearer(admin_token)).json()
    assert stored["state"] == "succeeded" and stored["result"] == {"message": "hello"}


def test_sync_activities_run_one_at_a_time_in_arrival_order(
    client: TestClient, admin_token: str, recorded: Recorded
) -> None:
    def submitter(offset: int) -> list[int]:
        ids = []
        for n in range(15):
            body = {"action": "test.record", "args": {"seq": offset + n, "seconds": 0.002}}
            ids += submit(client, admin_token, body)["ids"]
        return ids

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        all_ids = [i for ids in pool.map(submitter, [0, 100, 200, 300]) for i in ids]
    results = wait_all(client, admin_token, all_ids)
    assert {r["state"] for r in results} == {"succeeded"}
    by_id = sorted(results, key=lambda r: r["id"])
    assert recorded.executed == [r["args"]["seq"] for r in by_id]
    assert recorded.concurrency["peak"] == 1
    for earlier, later in itertools.pairwise(by_id):
        assert earlier["finished_at"] <= later["started_at"]


def test_async_activities_run_concurrently_up_to_the_bound(
    client: TestClient, admin_token: str, recorded: Recorded
) -> None:
    body = [{"action": "test.record", "args": {"seq": n, "seconds": 0.3}, "mode": "async"} for n in range(9)]
    began = time.monotonic()
    answer = submit(client, admin_token, body, wait=30)
    elapsed = time.monotonic() - began
    assert {a["state"] for a in answer["activities"]} == {"succeeded"}
    assert recorded.concurrency["peak"] == 3  # activities.max_concurrent in these tests
    assert 0.85 < elapsed < 5  # three rounds of three, not nine in a row, not all at once


def test_a_batch_runs_in_order_and_stops_at_the_first_failure(
    client: TestClient, admin_token: str, recorded: Recorded
) -> None:
    body = {
        "batch": True,
        "activities": [
            {"action": "test.record", "args": {"seq": 1}},
            {"action": "test.fail"},
            {"action": "test.record", "args": {"seq": 3}},
        ],
    }
    activities = submit(client, admin_token, body, wait=10)["activities"]
    assert [a["state"] for a in activities] == ["succeeded", "failed", "cancelled"]
    assert activities[1]["error"]["message"] == "RuntimeError: failing on purpose"
    assert activities[2]["error"]["code"] == "batch_stopped"
    assert len({a["batch_id"] for a in activities}) == 1 and [a["batch_index"] for a in activities] == [0, 1, 2]
    assert recorded.executed == [1]


def test_a_plain_list_runs_every_item(client: TestClient, admin_token: str) -> None:
    body = [{"action": "test.fail"}, {"action": "system.echo", "args": {"message": "still runs"}}]
    activities = submit(client, admin_token, body, wait=10)["activities"]
    assert [a["state"] for a in activities] == ["failed", "succeeded"]


def test_the_same_idempotency_key_returns_the_first_activity(
    client: TestClient, admin_token: str, recorded: Recorded
) -> None:
    body = {"action": "test.record", "args": {"seq": 7}, "idempotency_key": "invoice-42"}
    first = submit(client, admin_token, body, wait=10)["activities"][0]
    again = submit(client, admin_token, body, wait=10)["activities"][0]
    assert again["id"] == first["id"] and again["state"] == "succeeded"
    assert recorded.executed == [7]


def test_cancel_a_queued_activity_but_not_a_running_one(
    client: TestClient, admin_token: str, recorded: Recorded
) -> None:
    blocker = submit(client, admin_token, {"action": "test.record", "args": {"seq": 1, "seconds": 0.6}})["ids"][0]
    queued = submit(client, admin_token, {"action": "test.record", "args": {"seq": 2}})["ids"][0]
    wait_until(
        lambda: client.get(f"/api/v1/activities/{blocker}", headers=bearer(admin_token)).json()["state"] == "running",
        5,
        interval=0.01,
        message="the blocker to run",
    )
    refused = client.post(f"/api/v1/activities/{blocker}/cancel", headers=bearer(admin_token))
    assert refused.status_code == 409 and "running" in refused.json()["error"]["message"]
    cancelled = client.post(f"/api/v1/activities/{queued}/cancel", headers=bearer(admin_token))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    wait_all(client, admin_token, [blocker])
    time.sleep(0.1)
    assert recorded.executed == [1]
    again = client.post(f"/api/v1/activities/{queued}/cancel", headers=bearer(admin_token))
    assert again.status_code == 409
    assert client.post("/api/v1/activities/999999/cancel", headers=bearer(admin_token)).status_code == 404


def test_listing_filters_and_pages(client: TestClient, admin_token: str) -> None:
    submit(client, admin_token, [{"action": "system.echo", "args": {"message": str(n)}} for n in range(5)], wait=10)
    submit(client, admin_token, {"action": "test.fail"}, wait=10)
    failed = client.get("/api/v1/activities", params={"state": "failed"}, headers=bearer(admin_token)).json()
    assert [a["action"] for a in failed["items"]] == ["test.fail"]
    echoes = client.get(
        "/api/v1/activities", params={"action": "system.", "limit": 3}, headers=bearer(admin_token)
    ).json()
    assert len(echoes["items"]) == 3 and echoes["next_cursor"]
    assert echoes["items"][0]["id"] > echoes["items"][-1]["id"]
    bad = client.get("/api/v1/activities", params={"state": "exploded"}, headers=bearer(admin_token))
    assert bad.status_code == 422


def test_a_cancel_answered_cancelled_means_the_activity_never_runs(
    client: TestClient, admin_token: str, recorded: Recorded
) -> None:
    """Cancels raced against the worker's start (its durable "running" write in flight): each answer is true."""
    answers: dict[int, int] = {}
    ids: dict[int, int] = {}
    for seq in range(60):
        mode = "async" if seq % 2 else "sync"
        body = {"action": "test.record", "args": {"seq": seq, "seconds": 0.005}, "mode": mode}
        ids[seq] = submit(client, admin_token, body)["ids"][0]
        answers[seq] = client.post(f"/api/v1/activities/{ids[seq]}/cancel", headers=bearer(admin_token)).status_code
    finals = dict(zip(ids, wait_all(client, admin_token, list(ids.values())), strict=True))
    time.sleep(0.2)
    for seq, status in answers.items():
        assert status in (200, 409), status
        ran = seq in recorded.executed
        if status == 200:
            assert not ran and finals[seq]["state"] == "cancelled", (seq, finals[seq])
        else:
            assert ran and finals[seq]["state"] == "succeeded", (seq, finals[seq])
