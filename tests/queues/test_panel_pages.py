"""The queues pages as the server renders them, on both stores, through a logged-in panel session: the list's counts,
SLA status and throughput; a queue's items filtered by state, reference and time, with exports of the same filter;
an item's payload, error and history; retry and delete of ticked items (CSRF checked); the New queue form; and a
viewer who sees no write control and is refused every post."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from robofleet.orchestrator import Orchestrator
from robofleet.queues.models import QueueItem
from tests.conftest import MakeUser, bearer
from tests.queues.conftest import QueuesApi


def logged_in(client: TestClient, username: str) -> str:
    """Logs `client` in to the panel as `username`; its CSRF token."""
    answer = client.post("/api/v1/auth/login", json={"username": username, "password": f"{username}-password"})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["csrf_token"]
    return token


@pytest.fixture
def admin(client: TestClient, make_user: MakeUser) -> tuple[TestClient, str, QueuesApi]:
    """The admin's panel session, its CSRF token, and the queues API as the admin (a bearer token)."""
    token = make_user("carla", ["admin"], password="carla-password")
    return client, logged_in(client, "carla"), QueuesApi(client, bearer(token))


@pytest.fixture
def viewer(client: TestClient, make_user: MakeUser) -> Iterator[tuple[TestClient, str]]:
    make_user("vera", ["viewer"], password="vera-password")
    other = TestClient(client.app, base_url="http://testserver")  # the app is started already: no lifespan again
    try:
        yield other, logged_in(other, "vera")
    finally:
        other.close()


def row_of(html: str, attribute: str, value: str | int) -> str:
    found = re.search(rf'<tr data-{attribute}="{value}".*?</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return found.group(0)


def listed_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr data-item="(\d+)"', html)]


def finish(queues: QueuesApi, queue: str, verb: str, **body: object) -> int:
    item = queues.next(queue)
    assert item is not None
    assert queues.report(queue, item, verb, **body).status_code == 200
    return int(item["id"])


def test_the_list_shows_counts_sla_and_the_last_hours_throughput(
    admin: tuple[TestClient, str, QueuesApi], context: Orchestrator
) -> None:
    client, _, queues = admin
    queues.create("invoices", sla_minutes=10, description="Supplier invoices", tags=["finance"])
    queues.create("quiet")
    ids = queues.add("invoices", *({"reference": f"INV-{n}"} for n in range(6)))["ids"]
    finish(queues, "invoices", "complete")
    finish(queues, "invoices", "complete")
    finish(queues, "invoices", "fail", kind="business", message="vendor unknown")
    with context.store.transaction() as session:  # the two oldest waiting were added 15 minutes ago: past the SLA
        late = datetime.now(UTC) - timedelta(minutes=15)
        session.execute(update(QueueItem).where(QueueItem.id.in_(ids[3:5])).values(created_at=late))

    html = client.get("/panel/queues").text
    row = row_of(html, "queue", "invoices")
    cells = dict(re.findall(r'data-field="(\w+)"[^>]*>(.*?)</td>', row, re.S))
    assert ">3<" in cells["waiting"] and ">0<" in cells["in_progress"] and ">2<" in cells["done"]
    assert ">1<" in cells["failed"] and ">0<" in cells["abandoned"]
    assert "2 past SLA" in cells["sla"] and "15 min" in cells["oldest"]
    assert 'data-total="2"' in cells["throughput"] and "<polyline" in cells["throughput"]
    assert "Supplier invoices" in row and "#finance" in row
    quiet = row_of(html, "queue", "quiet")
    assert "no SLA" in quiet and 'data-total="0"' in quiet and "<polyline" not in quiet
    # The refresh asks for the table's body alone.
    part = client.get("/panel/queues", params={"part": "rows"}).text
    assert part.lstrip().startswith('<tbody id="queue-rows"') and "2 past SLA" in part and "<html" not in part


def test_a_queues_items_are_filtered_by_state_reference_and_time_and_exported_so(
    admin: tuple[TestClient, str, QueuesApi], context: Orchestrator
) -> None:
    client, _, queues = admin
    queues.create("orders")
    ids = queues.add(
        "orders", *({"reference": f"{'EU' if n % 2 else 'US'}-{n}", "payload": {"n": n}} for n in range(8))
    )["ids"]
    failed = finish(queues, "orders", "fail", kind="business", message="no stock")
    done = finish(queues, "orders", "complete", output={"ok": True})
    with context.store.transaction() as session:  # the first three were added yesterday
        yesterday = datetime.now(UTC) - timedelta(days=1)
        session.execute(update(QueueItem).where(QueueItem.id.in_(ids[:3])).values(created_at=yesterday))

    page = client.get("/panel/queues/orders").text
    assert listed_ids(page) == sorted(ids, reverse=True)  # newest first
    assert "Retry selected" in page and 'name="id"' in page and 'id="upload"' in page
    assert listed_ids(client.get("/panel/queues/orders?state=failed").text) == [failed]
    assert listed_ids(client.get("/panel/queues/orders?state=done&state=failed").text) == sorted([done, failed])[::-1]
    eu = [item_id for n, item_id in enumerate(ids) if n % 2]
    assert listed_ids(client.get("/panel/queues/orders?reference_prefix=EU-").text) == eu[::-1]
    assert listed_ids(client.get("/panel/queues/orders?within=1h").text) == ids[3:][::-1]
    since = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    until = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    between = client.get("/panel/queues/orders", params={"within": "between", "since": since, "until": until})
    assert listed_ids(between.text) == ids[:3][::-1]

    # The export links carry the filter the page shows: the same items, oldest first.
    filtered = client.get("/panel/queues/orders?reference_prefix=EU-&within=1h").text
    link = re.search(r'href="([^"]+)" id="export-csv"', filtered)
    assert link and link.group(1)
    exported = client.get(link.group(1).replace("&amp;", "&"))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(row["id"]) for row in rows] == [item_id for item_id in eu if item_id not in ids[:3]]

    # A filter it cannot read is named, and lists nothing.
    bad = client.get("/panel/queues/orders", params={"within": "between", "since": "last tuesday"})
    assert bad.status_code == 422 and "is not a time" in bad.text and listed_ids(bad.text) == []

    # Deleted items only show when asked for; paging goes on from the last one shown.
    queues.request("POST", "/orders/items/delete", json={"ids": [ids[-1]]})
    assert ids[-1] not in listed_ids(client.get("/panel/queues/orders").text)
    assert listed_ids(client.get("/panel/queues/orders?state=deleted").text) == [ids[-1]]
    queues.add("orders", *({"reference": f"bulk-{n}"} for n in range(60)))
    first = client.get("/panel/queues/orders?reference_prefix=bulk-").text
    assert len(listed_ids(first)) == 50
    older = re.search(r'href="([^"]+)" id="older-items"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert len(listed_ids(second)) == 10 and min(listed_ids(first)) > max(listed_ids(second))


def test_an_item_page_shows_payload_error_attempts_and_history(admin: tuple[TestClient, str, QueuesApi]) -> None:
    client, _, queues = admin
    queues.create("retried", max_retries=1, retry_backoff_seconds=0)
    [item_id] = queues.add("retried", {"reference": "R-1", "payload": {"invoice": "R-1", "amount": 4200}})["ids"]
    finish(queues, "retried", "fail", kind="application", message="portal timed out\nat step 3")
    finish(queues, "retried", "fail", kind="application", message="portal timed out again")

    page = client.get(f"/panel/queues/retried/items/{item_id}", params={"back": "state=abandoned"})
    assert page.status_code == 200
    html = unescape(page.text)
    assert '"amount": 4200' in html and '"invoice": "R-1"' in html
    assert "2 of at most 2" in html and "portal timed out again" in html and "abandoned" in html
    history = re.findall(r'<tr data-event="(\w+)"', html)
    assert history == ["failed", "failed"]
    assert "portal timed out\nat step 3" in html  # kept as written, line break included
    assert 'href="/panel/queues/retried?state=abandoned" id="back-to-items"' in html
    assert 'id="action-retry"' in html and 'id="action-delete"' in html
    assert client.get("/panel/queues/retried/items/999999").status_code == 404
    assert client.get("/panel/queues/nowhere").status_code == 404


def test_ticked_items_are_retried_and_deleted_with_the_csrf_token(admin: tuple[TestClient, str, QueuesApi]) -> None:
    client, csrf, queues = admin
    queues.create("bulk")
    ids = queues.add("bulk", *({"reference": f"B-{n}"} for n in range(4)))["ids"]
    failed = finish(queues, "bulk", "fail", kind="business", message="bad data")
    back = "/panel/queues/bulk?state=failed"

    retried = client.post(
        "/panel/queues/bulk/items/retry",
        data={"csrf_token": csrf, "id": [str(failed), str(ids[-1])], "back": back},
        follow_redirects=False,
    )
    assert retried.status_code == 303 and retried.headers["location"] == back
    notice = client.get(back).text
    assert (
        "1 of 2 selected item(s) will be retried. Only failed and abandoned items are retried; not retried: 1 new."
        in notice
    )
    assert queues.item("bulk", failed)["state"] == "retry"
    assert [event["event"] for event in queues.item("bulk", failed)["history"]] == ["failed", "retried"]

    deleted = client.post(
        "/panel/queues/bulk/items/delete",
        data={"csrf_token": csrf, "id": [str(ids[1]), str(ids[2])], "back": "https://evil.example/"},
        follow_redirects=False,
    )
    assert deleted.headers["location"] == "/panel/queues/bulk"  # never back to elsewhere
    assert "2 item(s) deleted." in client.get("/panel/queues/bulk").text
    assert {queues.item("bulk", item_id)["state"] for item_id in ids[1:3]} == {"deleted"}
    twice = {"csrf_token": csrf, "id": [str(ids[1]), str(ids[-1])]}
    assert client.post("/panel/queues/bulk/items/delete", data=twice, follow_redirects=False).status_code == 303
    assert "1 item(s) deleted. Not deleted: 1 deleted already." in client.get("/panel/queues/bulk").text

    nothing = client.post("/panel/queues/bulk/items/retry", data={"csrf_token": csrf}, follow_redirects=False)
    assert "Tick the items first." in client.get(nothing.headers["location"]).text
    forged = client.post("/panel/queues/bulk/items/delete", data={"id": str(ids[0])}, follow_redirects=False)
    assert forged.status_code == 403 and queues.item("bulk", ids[0])["state"] == "retry"


def test_the_new_queue_form_creates_a_queue_or_keeps_the_typing(admin: tuple[TestClient, str, QueuesApi]) -> None:
    client, csrf, queues = admin
    form = {
        "csrf_token": csrf,
        "name": "claims",
        "description": "Insurance claims",
        "sla_minutes": "45",
        "max_retries": "2",
        "retry_backoff_seconds": "10",
        "lease_seconds": "120",
        "retention_days": "14",
        "tags": "insurance",
        "unique_references": "on",
    }
    made = client.post("/panel/queues", data=form, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"] == "/panel/queues/claims"
    stored = queues.request("GET", "/claims").json()
    assert stored["sla_minutes"] == 45 and stored["unique_references"] is True and stored["lease_seconds"] == 120
    assert "SLA 45 min" in client.get("/panel/queues/claims").text

    again = client.post("/panel/queues", data={**form, "lease_seconds": "0"})
    assert again.status_code == 422 and 'id="error-lease_seconds"' in again.text
    assert 'value="Insurance claims"' in again.text and 'value="45"' in again.text
    twice = client.post("/panel/queues", data=form)
    assert twice.status_code == 409 and "exists already" in twice.text


def test_a_viewer_sees_no_write_controls_and_every_post_is_refused(
    admin: tuple[TestClient, str, QueuesApi], viewer: tuple[TestClient, str]
) -> None:
    _, _, queues = admin
    queues.create("watched")
    [item_id] = queues.add("watched", {"reference": "W-1"})["ids"]
    failed = finish(queues, "watched", "fail", kind="business", message="x")
    assert failed == item_id
    client, csrf = viewer
    listing = client.get("/panel/queues").text
    assert 'data-queue="watched"' in listing and 'id="new-queue"' not in listing
    page = client.get("/panel/queues/watched").text
    assert listed_ids(page) == [item_id]
    for control in ('id="upload"', 'name="id"', "Retry selected", "Delete selected", 'id="select-all"'):
        assert control not in page, control
    assert 'id="export-csv"' in page  # reading is theirs
    detail = client.get(f"/panel/queues/watched/items/{item_id}").text
    assert 'id="action-retry"' not in detail and 'id="action-delete"' not in detail
    for path, data in (
        ("/panel/queues/watched/items/retry", {"id": str(item_id)}),
        ("/panel/queues/watched/items/delete", {"id": str(item_id)}),
        ("/panel/queues", {"name": "mine"}),
    ):
        refused = client.post(path, data={"csrf_token": csrf, **data}, follow_redirects=False)
        assert refused.status_code == 403, path
    added = client.post("/api/v1/queues/watched/items", json={"items": [{}]}, headers={"X-CSRF-Token": csrf})
    assert added.status_code == 403
    assert queues.item("watched", item_id)["state"] == "failed"
