"""The queues pages in headless Chromium on one real `robofleet serve`: the list follows its queues live and "g q"
goes there; a queue's items are filtered, opened from the keyboard, ticked (select all, Shift+click, x) and retried
or deleted; a CSV file is added in parts of 1,000 items with a progress bar that counts what the server took, its
malformed rows and refused references reported by line while the good rows are added; JSON and NDJSON files too,
and nothing at all when asked to be strict; a viewer sees no write control and cannot post."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, FilePayload, Page, expect

from tests.conftest import ServeProcess, StartServe, log_in, signed_in, wait_until
from tests.queues.conftest import QueuesApi

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def serve(start_module_serve: StartServe) -> ServeProcess:
    serve = start_module_serve()
    serve.user("vera", "viewer")
    return serve


@pytest.fixture(scope="module")
def api(serve: ServeProcess) -> Iterator[QueuesApi]:
    with serve.api(timeout=20) as client:
        yield QueuesApi(client)


@pytest.fixture
def admin(serve: ServeProcess, module_browser: Browser) -> Iterator[Page]:
    """The admin's page on the queues list; the test fails if a script of the page threw."""
    with signed_in(
        module_browser, serve.url, "admin", serve.admin_password(), "/panel/queues", accept_dialogs=True
    ) as page:
        yield page


def finish(api: QueuesApi, queue: str, verb: str, **body: Any) -> int:
    item = api.next(queue)
    assert item is not None
    assert api.report(queue, item, verb, **body).status_code == 200
    return int(item["id"])


def upload(page: Page, name: str, text: str, *, strict: bool = False) -> str:
    """Adds the file `name` holding `text` through the queue page's form; the status line once it is done."""
    box = page.locator("#upload-box")
    if box.get_attribute("open") is None:
        page.click("#upload-box summary")
    file = FilePayload(name=name, mimeType="text/plain", buffer=text.encode())
    page.set_input_files("#upload-file", files=[file])
    page.set_checked("#upload-strict", strict)
    page.click("#upload-start")
    expect(page.locator("#upload-start")).to_be_enabled(timeout=30_000)
    return page.inner_text("#upload-status")


def problems(page: Page) -> list[str]:
    return page.locator("#upload-problems li").all_inner_texts()


def test_the_list_follows_its_queues_live_and_g_q_goes_there(serve: ServeProcess, api: QueuesApi, admin: Page) -> None:
    page = admin
    api.create("live-q", sla_minutes=30)
    api.create("other-q")
    page.goto(f"{serve.url}/panel/fleet")
    page.keyboard.press("g")
    page.keyboard.press("q")
    page.wait_for_url("**/panel/queues")
    row = "#queues tr[data-queue='live-q']"
    assert page.inner_text(f"{row} [data-field=waiting]") == "0"
    assert page.inner_text(f"{row} [data-field=sla]") == "within SLA"

    # Items added and done elsewhere show without a reload.
    api.add("live-q", *({"reference": f"L-{n}"} for n in range(3)))
    finish(api, "live-q", "complete")
    expect(page.locator(f"{row} [data-field=waiting]")).to_have_text("2", timeout=15_000)
    expect(page.locator(f"{row} [data-field=throughput] svg")).to_have_attribute("data-total", "1")
    assert page.locator(f"{row} [data-field=throughput] polyline").count() == 1

    # "/" focuses the filter, which hides the queues that do not match (and they stay hidden as the rows refresh).
    page.keyboard.press("/")
    page.keyboard.type("live")
    assert page.is_visible(row) and page.is_hidden("#queues tr[data-queue='other-q']")
    page.wait_for_timeout(5_500)
    assert page.is_hidden("#queues tr[data-queue='other-q']")
    page.click(f"{row} a >> nth=0")
    page.wait_for_url("**/panel/queues/live-q")
    assert page.inner_text("#queue-figures [data-count=new] strong") == "2"


def test_items_are_filtered_opened_ticked_retried_and_deleted(serve: ServeProcess, api: QueuesApi, admin: Page) -> None:
    page = admin
    api.create("work")
    ids = api.add("work", *({"reference": f"W-{n}", "payload": {"n": n}} for n in range(6)))["ids"]
    failed = [finish(api, "work", "fail", kind="business", message=f"bad row {n}") for n in range(2)]
    finish(api, "work", "complete", output={"done": True})
    assert failed == ids[:2]
    page.goto(f"{serve.url}/panel/queues/work")
    assert page.locator("#items tbody tr[data-item]").count() == 6

    # Filter by state with the form: the link keeps it, and so do the export links.
    page.check("#item-filter input[name=state][value=failed]")
    page.click("#apply-filter")
    page.wait_for_url("**/panel/queues/work?state=failed*")
    expect(page.locator("#items tbody tr[data-item]")).to_have_count(2)
    assert "state=failed" in (page.get_attribute("#export-ndjson", "href") or "")
    exported = page.request.get(serve.url + (page.get_attribute("#export-ndjson", "href") or ""))
    assert sorted(json.loads(line)["id"] for line in exported.text().splitlines()) == failed

    # The keyboard: j to the first item, Enter opens it; its page says what happened and leads back to the filter.
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/panel/queues/work/items/{failed[1]}*")
    assert "bad row 1" in page.inner_text("#item-error")
    assert '"n": 1' in page.inner_text("#item-payload")
    assert page.locator("#history tr[data-event=failed]").count() == 1
    page.click("#back-to-items")
    page.wait_for_url("**/panel/queues/work?state=failed")

    # Ticking: select all, then retry (only the failed are), with the counts shown before the click.
    page.click("#clear-filter")
    page.wait_for_url("**/panel/queues/work")
    assert page.is_disabled("#retry-selected") and page.is_disabled("#delete-selected")
    page.check("#select-all")
    expect(page.locator("#selected-count")).to_have_text("6 selected (2 can be retried, 6 deleted)")
    page.click("#retry-selected")
    page.wait_for_selector(".flash.notice:has-text('2 of 6 selected item(s) will be retried')")
    assert {api.item("work", item_id)["state"] for item_id in failed} == {"retry"}

    # Shift+click ticks a range; x on the keyboard ticks the focused item; Delete asks first, then deletes them.
    boxes = "#item-rows input[name=id]"
    page.click(f"{boxes} >> nth=0")
    page.click(f"{boxes} >> nth=2", modifiers=["Shift"])
    expect(page.locator("#selected-count")).to_contain_text("3 selected")
    page.focus(f"{boxes} >> nth=3")
    page.keyboard.press("x")
    expect(page.locator("#selected-count")).to_contain_text("4 selected")
    ticked = [int(page.get_attribute(f"{boxes} >> nth={n}", "value") or 0) for n in range(4)]
    assert ticked == sorted(ids, reverse=True)[:4]
    page.click("#delete-selected")
    page.wait_for_selector(".flash.notice:has-text('4 item(s) deleted.')")
    assert {api.item("work", item_id)["state"] for item_id in ticked} == {"deleted"}
    assert page.locator("#items tbody tr[data-item]").count() == 2


def test_a_csv_file_is_added_in_parts_with_real_progress_and_its_bad_lines_reported(
    serve: ServeProcess, api: QueuesApi, admin: Page
) -> None:
    page = admin
    api.create("upload", unique_references=True)
    api.add("upload", {"reference": "DUP-1"})
    good = [f"UP-{n},{n % 5},Acme {n},{n}.50" for n in range(2500)]
    rows = [
        "reference,priority,vendor,amount",
        *good[:2],
        "UP-bad,high,Acme,1",
        *good[2:1000],
        "UP-short,1,Acme",
        *good[1000:],
        '"UP-multi",2,"Acme ""North""\nBranch",7',
        "DUP-1,0,Acme,1",
    ]
    text = "\r\n".join(rows) + "\r\n"
    short_line = rows.index("UP-short,1,Acme") + 1
    duplicate_line = text[: text.index("DUP-1,0")].count("\n") + 1  # the quoted line break counts as a line
    assert (short_line, duplicate_line) == (1003, 2506)
    page.goto(f"{serve.url}/panel/queues/upload")
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.method) if request.url.endswith("/upload/items") else None)
    # Every value the progress bar shows, as it shows it.
    page.evaluate(
        """() => {
          window.shown = [];
          const bar = document.getElementById("upload-progress");
          new MutationObserver(() => { if (bar.hasAttribute("value")) window.shown.push([bar.value, bar.max]); })
            .observe(bar, {attributes: true, attributeFilter: ["value", "max"]});
        }"""
    )
    page.keyboard.press("n")  # unfolds the upload and focuses its file field
    assert page.get_attribute("#upload-box", "open") is not None
    assert page.evaluate("document.activeElement.id") == "upload-file"

    status = upload(page, "invoices.csv", text)
    assert status == "Done. 2,504 of 2,504 rows: 2,501 added, 1 refused, 2 malformed."
    assert sent == ["POST"] * 3  # 2,502 rows sent: 1,000 at a time
    shown = page.evaluate("window.shown")
    values = [value for value, _ in shown]
    assert values == sorted(values) and values[-1] == 2504 and {2, 1002, 2002} <= set(values)
    assert problems(page) == [
        'Line 4: priority must be a whole number from 0 to 1000, got "high"',
        f"Line {short_line}: 3 value(s), the header has 4 column(s)",
        f"Line {duplicate_line}: queue 'upload' holds an item with reference 'DUP-1' already",
    ]
    counts = api.stats("upload")["counts"]
    assert counts["new"] == 2502  # DUP-1 from before, and the 2,501 good rows
    [multi] = api.items("upload", reference_prefix="UP-multi")
    assert multi["priority"] == 2 and multi["payload"] == {"vendor": 'Acme "North"\nBranch', "amount": "7"}
    [first] = api.items("upload", reference_prefix="UP-0")
    assert first["payload"] == {"vendor": "Acme 0", "amount": "0.50"}
    # The figures and the items follow at once.
    expect(page.locator("#queue-figures [data-count=new] strong")).to_have_text("2,502")
    expect(page.locator("#items tbody tr[data-item]")).to_have_count(50)


def test_json_and_ndjson_files_and_a_strict_upload_that_adds_nothing(
    serve: ServeProcess, api: QueuesApi, admin: Page
) -> None:
    page = admin
    api.create("json-in")
    page.goto(f"{serve.url}/panel/queues/json-in")
    ndjson = '{"reference": "N-1", "payload": {"a": 1}}\n{not json}\n\n{"reference": "N-2", "priority": 7}\n'
    status = upload(page, "items.ndjson", ndjson, strict=True)
    assert status.startswith("Nothing was added: 1 malformed row(s)")
    assert [text.split(":")[0] for text in problems(page)] == ["Line 2"]
    assert api.items("json-in") == []

    assert upload(page, "items.ndjson", ndjson) == "Done. 3 of 3 rows: 2 added, 0 refused, 1 malformed."
    assert sorted((item["reference"], item["priority"]) for item in api.items("json-in")) == [("N-1", 0), ("N-2", 7)]

    array = json.dumps(
        [
            {"reference": "A-1", "payload": {"x": 1}, "deadline": "2030-01-01T12:00:00+01:00"},
            {"reference": "A-2", "colour": "red"},
            {"reference": "A-3", "postpone_until": "tomorrow"},
        ],
        indent=2,
    )
    assert upload(page, "array.json", array) == "Done. 3 of 3 rows: 1 added, 0 refused, 2 malformed."
    assert problems(page) == [
        'Line 9 (item 2): unknown field "colour" (an item has reference, priority, payload, deadline, postpone_until)',
        "Line 13 (item 3): postpone_until must be an ISO time with its offset, e.g. 2026-12-31T17:00:00+01:00, "
        'got "tomorrow"',
    ]
    [added] = api.items("json-in", reference_prefix="A-")
    assert added["deadline"].startswith("2030-01-01T11:00:00")


def test_csv_reading_keeps_line_numbers_through_quoted_line_breaks(
    serve: ServeProcess, api: QueuesApi, admin: Page
) -> None:
    api.create("csv-rules")
    page = admin
    page.goto(f"{serve.url}/panel/queues/csv-rules")
    text = (
        "\ufeffReference;Payload;note\n"  # a BOM, semicolons (as a spreadsheet in many locales saves), any case
        'S-1;{"k": 1};"two\nlines; and a ""quote"""\n'
        "\n"  # a blank line is no row
        'S-2;;"closed" then more\n'
        "S-3;[1];x\n"
        'S-4;;"never closed\n'
        "S-5;;y\n"
    )
    read = page.evaluate(
        "([text, limit]) => window.robofleetQueueFiles.itemsOf('x.csv', text, {maxPayload: limit})",
        [text, 262_144],
    )
    assert [(row["line"], row["item"]) for row in read["rows"]] == [
        (2, {"reference": "S-1", "payload": {"k": 1, "note": 'two\nlines; and a "quote"'}})
    ]
    assert [(problem["line"], problem["message"]) for problem in read["problems"]] == [
        (5, 'text after a closing quote (a quote inside a value must be doubled: "")'),
        (6, "payload must be a JSON object"),
        (7, "a quoted value is never closed: this line and every one after it were left out"),
    ]


def test_a_viewer_sees_no_write_controls_and_cannot_post(
    serve: ServeProcess, api: QueuesApi, module_browser: Browser
) -> None:
    api.create("viewed")
    [item_id] = api.add("viewed", {"reference": "V-1"})["ids"]
    assert finish(api, "viewed", "fail", kind="business", message="no") == item_id
    context = module_browser.new_context()
    page = context.new_page()
    try:
        log_in(page, serve.url, "vera", "vera-password", "/panel/queues")
        assert page.locator("#queues tr[data-queue='viewed']").count() == 1
        assert page.locator("#new-queue").count() == 0
        page.goto(f"{serve.url}/panel/queues/viewed")
        assert page.locator("#items tbody tr[data-item]").count() == 1
        for control in ("#upload", "#items-form", "#select-all", "#item-rows input[type=checkbox]"):
            assert page.locator(control).count() == 0, control
        assert page.locator("#export-csv").count() == 1
        page.goto(f"{serve.url}/panel/queues/viewed/items/{item_id}")
        assert page.locator("#action-retry, #action-delete").count() == 0
        token = json.loads(page.get_attribute("body", "hx-headers") or "{}")["X-CSRF-Token"]
        for path in ("/panel/queues/viewed/items/retry", "/panel/queues/viewed/items/delete", "/panel/queues"):
            refused = page.request.post(f"{serve.url}{path}", form={"csrf_token": token, "id": str(item_id)})
            assert refused.status == 403, path
        added = page.request.post(
            f"{serve.url}/api/v1/queues/viewed/items", data={"items": [{}]}, headers={"X-CSRF-Token": token}
        )
        assert added.status == 403
        wait_until(lambda: api.item("viewed", item_id)["state"] == "failed", 5)
    finally:
        context.close()
