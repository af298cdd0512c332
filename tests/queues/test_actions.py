"""Queues as actions on both stores: a queue's life run as real activities (POST /api/v1/activities, their results
waited for) answers as the routes do, and a caller without an action's permission is refused it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer
from tests.queues.conftest import QueuesApi


def act(client: TestClient, token: str, action: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """The activity of `action` once it ended (succeeded or failed)."""
    answer = client.post(
        "/api/v1/activities", headers=bearer(token), params={"wait": 20}, json={"action": action, "args": args or {}}
    )
    assert answer.status_code == 201, answer.text
    activity: dict[str, Any] = answer.json()["activities"][0]
    assert activity["state"] in ("succeeded", "failed"), activity
    return activity


def result(client: TestClient, token: str, action: str, args: dict[str, Any] | None = None) -> Any:
    """What `action` answered; the activity must have succeeded."""
    activity = act(client, token, action, args)
    assert activity["state"] == "succeeded", activity
    return activity["result"]


def test_a_queues_items_are_added_worked_read_retried_and_deleted_as_actions(
    client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    QueuesApi(client, bearer(admin_token)).create("claims", max_retries=0)
    added = result(
        client,
        admin_token,
        "queues.add",
        {"name": "claims", "items": [{"reference": f"c{n}", "payload": {"n": n}, "priority": 3 - n} for n in range(3)]},
    )
    assert len(added["ids"]) == 3 and added["refused"] == []
    first, second, third = added["ids"]

    leased = result(client, admin_token, "queues.next", {"name": "claims"})
    assert leased["id"] == first and leased["state"] == "in_progress" and leased["lease_id"]
    done = result(
        client,
        admin_token,
        "queues.complete",
        {"name": "claims", "item_id": first, "lease_id": leased["lease_id"], "output": {"paid": True}},
    )
    assert done["state"] == "done" and done["output"] == {"paid": True}
    stale = act(
        client, admin_token, "queues.complete", {"name": "claims", "item_id": first, "lease_id": leased["lease_id"]}
    )
    assert stale["state"] == "failed" and stale["error"]["code"] == "lease_lost"  # as the route's 409
    again = result(client, admin_token, "queues.next", {"name": "claims"})
    assert again["id"] == second
    failed = result(
        client,
        admin_token,
        "queues.fail",
        {"name": "claims", "item_id": second, "lease_id": again["lease_id"], "kind": "business", "message": "no"},
    )
    assert failed["state"] == "failed"

    item = result(client, admin_token, "queues.item", {"name": "claims", "item_id": first})
    assert item["state"] == "done" and item["payload"] == {"n": 0} and item["output"] == {"paid": True}
    assert [(e["event"], e["from_state"], e["to_state"]) for e in item["history"]] == [
        ("completed", "in_progress", "done")
    ]
    missing = act(client, admin_token, "queues.item", {"name": "claims", "item_id": 999_999})
    assert missing["state"] == "failed" and missing["error"]["code"] == "not_found"

    everything = result(client, admin_token, "queues.items", {"name": "claims"})
    assert [i["id"] for i in everything["items"]] == [third, second, first] and everything["next_cursor"] is None
    page = result(client, admin_token, "queues.items", {"name": "claims", "reference_prefix": "c", "limit": 2})
    assert [i["id"] for i in page["items"]] == [third, second] and page["next_cursor"]
    rest = result(client, admin_token, "queues.items", {"name": "claims", "limit": 2, "cursor": page["next_cursor"]})
    assert [i["id"] for i in rest["items"]] == [first] and rest["next_cursor"] is None
    finished = result(client, admin_token, "queues.items", {"name": "claims", "state": ["done", "failed"]})
    assert [i["id"] for i in finished["items"]] == [second, first]
    by_route = QueuesApi(client, bearer(admin_token)).items("claims", state=["done", "failed"])
    assert finished["items"] == by_route  # the same answer as GET items
    unknown = {"action": "queues.items", "args": {"name": "claims", "ids": [first]}}  # not a filter of GET items
    bad_filter = client.post("/api/v1/activities", headers=bearer(admin_token), json=unknown)
    assert bad_filter.status_code == 422 and "ids: unknown field" in bad_filter.json()["error"]["message"]

    stats = result(client, admin_token, "queues.stats", {"name": "claims"})
    assert stats["queue"] == "claims" and stats["counts"]["done"] == 1 and stats["counts"]["failed"] == 1
    assert stats["counts"]["new"] == 1 and sum(stats["throughput_per_minute"]) == 1

    retried = result(client, admin_token, "queues.retry", {"name": "claims", "ids": [first, second, 999_999]})
    assert retried == {
        "count": 1,
        "skipped": [
            {"id": first, "state": "done", "reason": "wrong_state"},
            {"id": 999_999, "state": None, "reason": "not_found"},
        ],
    }
    assert result(client, admin_token, "queues.item", {"name": "claims", "item_id": second})["state"] == "retry"

    deleted = result(client, admin_token, "queues.delete_items", {"name": "claims", "state": ["new", "retry"]})
    assert deleted == {"count": 2, "skipped": []}
    left = result(client, admin_token, "queues.items", {"name": "claims", "state": ["deleted"]})
    assert sorted(i["id"] for i in left["items"]) == [second, third]
    unfiltered = act(client, admin_token, "queues.delete_items", {"name": "claims"})
    assert unfiltered["state"] == "failed" and unfiltered["error"]["code"] == "invalid"

    reader = make_user("reader", ["viewer", "operator"], scopes=["queues:read", "activities:run"])
    assert result(client, reader, "queues.item", {"name": "claims", "item_id": first})["state"] == "done"
    assert len(result(client, reader, "queues.items", {"name": "claims"})["items"]) == 3
    for action, args, needed in (
        ("queues.delete_items", {"name": "claims", "ids": [first]}, "queues:write"),
        ("queues.retry", {"name": "claims"}, "queues:write"),
        ("queues.add", {"name": "claims", "items": [{}]}, "queues:write"),
        ("queues.next", {"name": "claims"}, "queues:work"),
    ):
        refused = client.post("/api/v1/activities", headers=bearer(reader), json={"action": action, "args": args})
        assert refused.status_code == 403 and needed in refused.json()["error"]["message"], (action, refused.text)
    assert result(client, admin_token, "queues.item", {"name": "claims", "item_id": first})["state"] == "done"

    actions = {a["name"]: a for a in client.get("/api/v1/actions", headers=bearer(admin_token)).json()}
    permissions = {name: actions[f"queues.{name}"]["permission"] for name in ("items", "item", "delete_items")}
    assert permissions == {"items": "queues:read", "item": "queues:read", "delete_items": "queues:write"}
