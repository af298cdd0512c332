"""`for item in sdk.queue(...)` in real robot runs of a real `robofleet serve`, on both stores: workers drain what a
dispatcher adds, each item done exactly once; a business failure is final while an exception is retried as the
queue says; a lease outlives lease_seconds while the robot works; a safe stop ends a worker between items."""

from __future__ import annotations

import time

import pytest

from tests.conftest import wait_until
from tests.sdk.conftest import Fleet

pytestmark = pytest.mark.slow


def test_two_workers_drain_what_a_dispatcher_adds_each_item_done_once(fleet: Fleet) -> None:
    fleet.queues.create("invoices", lease_seconds=30, unique_references=True)
    dispatcher = fleet.dispatch("--count", "60", "--seconds", "0.05")
    fleet.said(dispatcher, "INFO invoice-dispatcher: added 60 invoices to invoices, 0 refused")
    runs = fleet.workers("--idle", "2", copies=2)
    for run in runs:
        fleet.ended(run, "succeeded")
    items = fleet.queues.items("invoices")
    assert len(items) == 60 and {item["state"] for item in items} == {"done"}
    assert {item["attempts"] for item in items} == {1}
    assert all(fleet.events("invoices", item["id"]) == ["completed"] for item in items), "each done exactly once"
    paid_by = {item["output"]["run"] for item in items}
    assert paid_by == {str(run["id"]) for run in runs}, "the work was shared"
    assert all(item["output"]["paid"] == 100 + int(item["reference"].removeprefix("INV-")) for item in items)
    again = fleet.dispatch("--count", "20", "--first", "51", name="second-dispatcher")
    fleet.said(again, "INFO invoice-dispatcher: added 10 invoices to invoices, 10 refused")


def test_a_business_error_is_final_and_an_exception_is_retried_then_abandoned(fleet: Fleet) -> None:
    fleet.queues.create("invoices", max_retries=1, retry_backoff_seconds=0)
    good, unpayable, crashing = fleet.queues.add(
        "invoices",
        {"reference": "good", "payload": {"number": "INV-1", "amount": 5}},
        {"reference": "unpayable", "payload": {"number": "INV-2", "amount": 0}},
        {"reference": "crashing", "payload": {"number": "INV-3", "amount": 5, "crash": True}},
    )["ids"]
    (run,) = fleet.workers("--idle", "1.5")
    fleet.ended(run, "succeeded")  # the exceptions were the items', not the robot's: it went on, then left idle

    done = fleet.queues.item("invoices", good)
    assert done["state"] == "done" and done["output"] == {"paid": 5, "run": str(run["id"])}

    failed = fleet.queues.item("invoices", unpayable)
    assert (failed["state"], failed["error_kind"], failed["attempts"]) == ("failed", "business", 1)
    assert failed["error"] == "invoice INV-2 has no payable amount: 0"

    abandoned = fleet.queues.item("invoices", crashing)
    assert (abandoned["state"], abandoned["error_kind"], abandoned["attempts"]) == ("abandoned", "application", 2)
    assert abandoned["error"].startswith("RuntimeError: the payment portal crashed on invoice INV-3\n")
    assert "Traceback (most recent call last)" in abandoned["error"] and "in pay" in abandoned["error"]
    history = abandoned["history"]
    assert [(entry["event"], entry["to_state"]) for entry in history] == [("failed", "retry"), ("failed", "abandoned")]

    fleet.said(
        run,
        f"WARNING robofleet.sdk: item {unpayable} of 'invoices' failed (business): invoice INV-2 has no payable",
        f"ERROR robofleet.sdk: item {crashing} of 'invoices' failed",
        "RuntimeError: the payment portal crashed on invoice INV-3",  # the traceback's last line
    )


def test_a_long_item_keeps_its_lease_past_lease_seconds(fleet: Fleet) -> None:
    fleet.queues.create("invoices", lease_seconds=1, retry_backoff_seconds=0)
    (slow,) = fleet.queues.add("invoices", {"payload": {"number": "INV-9", "amount": 9, "seconds": 3.5}})["ids"]
    (run,) = fleet.workers("--idle", "1")
    wait_until(lambda: fleet.in_progress("invoices"), 20, message="the item to be leased")
    time.sleep(2)  # twice the lease time: without extends the leader would have expired it (it looks every 0.2 s)
    (held,) = fleet.in_progress("invoices")
    assert held["id"] == slow and held["attempts"] == 1
    fleet.ended(run, "succeeded")
    item = fleet.queues.item("invoices", slow)
    assert (item["state"], item["attempts"]) == ("done", 1)
    assert [entry["event"] for entry in item["history"]] == ["completed"], "never expired"


def test_a_stop_ends_the_worker_between_items_its_current_item_completed(fleet: Fleet) -> None:
    fleet.queues.create("invoices", lease_seconds=30)
    # Each takes 2.5 s: the stop comes while the first is in hand.
    invoices = [
        {"reference": f"INV-{n}", "payload": {"number": f"INV-{n}", "amount": n, "seconds": 2.5}} for n in (1, 2, 3)
    ]
    fleet.queues.add("invoices", *invoices)
    (run,) = fleet.workers()
    fleet.said(run, "INFO invoice-worker: paying INV-", seconds=20)  # in hand: leased, and the robot at work on it
    (in_hand,) = fleet.in_progress("invoices")
    fleet.robots.act(run, "stop")
    fleet.ended(run, "stopped", seconds=10)
    states = {item["id"]: item for item in fleet.queues.items("invoices")}
    assert states[in_hand["id"]]["state"] == "done", "the item in hand was finished, then the robot left"
    rest = [item for item_id, item in states.items() if item_id != in_hand["id"]]
    assert [(item["state"], item["attempts"]) for item in rest] == [("new", 0), ("new", 0)], "none leased after it"
    fleet.said(run, "left the queue after 1 invoices (stop requested)")


def test_a_stop_while_waiting_for_items_is_seen_within_a_second(fleet: Fleet) -> None:
    fleet.queues.create("invoices")
    (run,) = fleet.workers()
    fleet.robots.wait_run(run["id"], "running")
    time.sleep(1.5)  # long-polling by now
    asked = time.monotonic()
    fleet.robots.act(run, "stop")
    fleet.ended(run, "stopped", seconds=10)
    assert time.monotonic() - asked < 2.5, "a poll slice is half a second; the rest is the run's end reaching us"
    fleet.said(run, "left the queue after 0 invoices (stop requested)")
