"""`sdk.queue(name).add()`, `add_many()` and a lease by hand, against a real `robofleet serve` on both stores, from a
program outside robofleet (an API token passed as url= and token=)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from robofleet import sdk
from tests.conftest import StartServe
from tests.queues.conftest import QueuesApi, serve_env

pytestmark = pytest.mark.slow


@pytest.fixture
def served(start_serve: StartServe, store_url: str) -> Iterator[tuple[QueuesApi, sdk.Queue]]:
    """An admin's QueuesApi of a real serve with a queue "invoices" of unique references, and that queue through
    the SDK."""
    serve = start_serve(env=serve_env(store_url))
    token = serve.token()
    queues = QueuesApi(serve.api(token))
    queues.create("invoices", unique_references=True, lease_seconds=30)
    invoices = sdk.queue("invoices", url=serve.url, token=token)
    yield queues, invoices
    invoices.connection.close()


def test_add_and_add_many_return_ids_and_refusals(served: tuple[QueuesApi, sdk.Queue]) -> None:
    queues, invoices = served
    due = datetime.now(UTC) + timedelta(hours=1)
    first = invoices.add({"number": "INV-1"}, reference="INV-1", priority=5, deadline=due)
    stored = queues.item("invoices", first)
    assert (stored["payload"], stored["reference"], stored["priority"], stored["state"]) == (
        {"number": "INV-1"},
        "INV-1",
        5,
        "new",
    )
    assert abs(datetime.fromisoformat(stored["deadline"]) - due) < timedelta(milliseconds=1)

    with pytest.raises(sdk.ItemRefused) as duplicate:
        invoices.add({"number": "INV-1"}, reference="INV-1")
    assert duplicate.value.reason == "duplicate_reference"

    many = [sdk.NewItem(reference=f"INV-{n}", payload={"n": n}) for n in range(2, 2502)]
    many[1500] = sdk.NewItem(reference="INV-1")  # refused in the second request of 1,000
    many[2400] = sdk.NewItem(reference="INV-7")  # and in the third
    added = invoices.add_many(many)
    assert [(refusal.index, refusal.reason) for refusal in added.refused] == [
        (1500, "duplicate_reference"),
        (2400, "duplicate_reference"),
    ]
    assert len(added.ids) == 2498 and added.ids == sorted(added.ids) and first not in added.ids
    assert queues.stats("invoices")["counts"]["new"] == 2499


def test_bad_adds_are_refused_with_what_is_wrong(served: tuple[QueuesApi, sdk.Queue]) -> None:
    _, invoices = served
    with pytest.raises(ValueError, match="deadline needs a time zone"):
        invoices.add({}, deadline=datetime.now())  # the mistake: no time zone
    with pytest.raises(ValueError, match=r"item 1: unknown field\(s\) \['amount'\]"):
        invoices.add_many([sdk.NewItem(payload={}), {"amount": 3}])  # type: ignore[list-item]
    with pytest.raises(sdk.Refused) as too_high:
        invoices.add({}, priority=5000)
    assert too_high.value.status == 422
    missing = sdk.Queue("no-such-queue", connection=invoices.connection)
    with pytest.raises(sdk.Refused) as unknown:
        missing.add({})
    assert (unknown.value.status, unknown.value.code) == (404, "not_found")
    with pytest.raises(sdk.Refused) as not_leased:
        missing.lease()
    assert not_leased.value.status == 404


def test_a_lease_by_hand_and_a_lost_lease_logged_not_raised(
    served: tuple[QueuesApi, sdk.Queue], caplog: pytest.LogCaptureFixture
) -> None:
    queues, invoices = served
    assert invoices.lease() is None
    urgent, later = invoices.add({"n": 1}, priority=9), invoices.add({"n": 2})
    item = invoices.lease(wait=1)
    assert item is not None and item.id == urgent and item.payload == {"n": 1} and item.attempts == 1
    assert item.complete({"ok": True}) == "done" and item.outcome == "done"
    assert queues.item("invoices", urgent)["output"] == {"ok": True}

    taken = invoices.lease()
    assert taken is not None and taken.id == later
    deleted = queues.request("POST", "/invoices/items/delete", json={"ids": [later]})  # an operator deletes it
    assert deleted.status_code == 200 and deleted.json()["count"] == 1
    with caplog.at_level(logging.WARNING, logger="robofleet.sdk"):
        assert taken.complete() == "lease_lost"
    assert f"could not complete item {later} of 'invoices'" in caplog.text and "deleted" in caplog.text
    with pytest.raises(RuntimeError, match="reported already"):
        taken.complete()
