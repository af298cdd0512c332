"""The Runs page and a run's page in headless Chromium on one real `robofleet serve`: runs across robots filtered,
with their duration and reason, new runs shown live, opened from the keyboard; a failed run's page with its reason,
exit code explained, timeline and its output in order with the traceback as one block; a running run's output
followed live and its end shown without a reload; a filter that cannot be read answered with what is wrong."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServeProcess, StartServe, signed_in, wait_until
from tests.robots.conftest import EXAMPLES

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CRASH = (
    "import logging\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "logging.info('step 1 of 4')\n"
    "def fetch():\n"
    "    raise ConnectionError('portal down')\n"
    "fetch()\n"
)


@pytest.fixture(scope="module")
def serve(start_module_serve: StartServe) -> ServeProcess:
    return start_module_serve()


@pytest.fixture(scope="module")
def api(serve: ServeProcess) -> Iterator[httpx.Client]:
    with serve.api(timeout=20) as client:
        for robot in (
            {"name": "invoices", "argv": [sys.executable, "-c", CRASH]},
            {"name": "counter", "argv": [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.2"]},
        ):
            assert client.post("/api/v1/robots", json=robot).status_code == 201
        yield client


@pytest.fixture
def admin(serve: ServeProcess, module_browser: Browser) -> Iterator[Page]:
    """The admin's page on the Runs page; the test fails if a script of the page threw."""
    with signed_in(module_browser, serve.url, "admin", serve.admin_password(), "/panel/runs") as page:
        yield page


def ended(api: httpx.Client, run_id: int, *states: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
        return run if run["state"] in states else None

    return wait_until(done, 20, message=f"run {run_id} to be {' or '.join(states)}")


def test_runs_are_listed_filtered_live_and_opened_from_the_keyboard(
    serve: ServeProcess, api: httpx.Client, admin: Page
) -> None:
    failed = ended(api, api.post("/api/v1/robots/invoices/start").json()["id"], "failed")
    admin.reload()
    row = admin.locator(f"#run-rows tr[data-run='{failed['id']}']")
    expect(row.locator("td.reason")).to_have_text("exit 1: ConnectionError: portal down")
    expect(row.locator("[data-field='duration']")).to_contain_text(" s")
    expect(admin.locator("#live-state")).to_have_text("live")

    running = api.post("/api/v1/robots/counter/start").json()  # shown without a reload
    expect(admin.locator(f"#run-rows tr[data-run='{running['id']}'] .badge")).to_have_text("running", timeout=10_000)

    admin.check("#runs-filter input[name=state][value=failed]")
    admin.click("#apply-filter")
    admin.wait_for_url("**/panel/runs?*state=failed*")
    expect(admin.locator(f"#run-rows tr[data-run='{running['id']}']")).to_have_count(0)
    states = admin.locator("#run-rows tr[data-run]").evaluate_all("rows => rows.map(row => row.dataset.state)")
    assert states and set(states) == {"failed"}
    admin.keyboard.press("j")
    expect(admin.locator(f"#run-rows tr[data-run='{failed['id']}'] a[data-open]")).to_be_focused()
    admin.keyboard.press("Enter")
    admin.wait_for_url(f"**/panel/runs/{failed['id']}")
    api.post(f"/api/v1/runs/{running['id']}/kill")
    ended(api, running["id"], "killed")


def test_a_failed_run_explains_itself_with_its_output_in_order(
    serve: ServeProcess, api: httpx.Client, admin: Page
) -> None:
    failed = ended(api, api.post("/api/v1/robots/invoices/start").json()["id"], "failed")
    admin.goto(f"{serve.url}/panel/runs/{failed['id']}")
    expect(admin.locator("#run-reason")).to_have_text("exit 1: ConnectionError: portal down")
    expect(admin.locator("#run-exit")).to_contain_text("1 (a general error; in Python, an uncaught exception)")
    expect(admin.locator("#run-timeline tbody tr")).to_have_count(3)
    assert admin.locator("#run-timeline tbody tr").evaluate_all("rows => rows.map(row => row.dataset.state)") == [
        "starting",
        "running",
        "failed",
    ]
    expect(admin.locator("#run-timeline tbody tr:last-child")).to_contain_text("exit 1: ConnectionError: portal down")
    expect(admin.locator("#run-origin")).to_contain_text("an API token of admin")
    expect(admin.locator("#run-logs")).to_have_attribute("href", f"/panel/logs?run_id={failed['id']}")
    expect(admin.locator("#run-robot")).to_have_attribute("href", "/panel/robots/invoices")
    traceback = admin.locator("#output-lines .output-line.traceback pre")
    expect(traceback).to_have_count(1)
    text = traceback.inner_text()
    assert text.startswith("Traceback (most recent call last):") and text.endswith("ConnectionError: portal down")
    first = admin.locator("#output-lines .output-line pre").first
    expect(first).to_have_text("INFO:root:step 1 of 4")  # oldest first


def test_a_running_run_is_followed_live_until_it_ends(serve: ServeProcess, api: httpx.Client, admin: Page) -> None:
    run = api.post("/api/v1/robots/counter/start").json()
    admin.goto(f"{serve.url}/panel/runs/{run['id']}")
    expect(admin.locator("#run-state")).to_have_text("running")
    shown = admin.locator("#output-lines .output-line pre").all_inner_texts()
    at_load = max([int(line.split()[1]) for line in shown if line.startswith("count ")], default=0)
    expect(admin.locator("#output-lines")).to_contain_text(f"count {at_load + 3}", timeout=10_000)  # live
    api.post(f"/api/v1/runs/{run['id']}/stop")
    expect(admin.locator("#run-state")).to_have_text("stopped", timeout=15_000)
    expect(admin.locator("#run-timeline tbody tr")).to_have_count(4)  # starting, running, stopping, stopped
    lines = admin.locator("#output-lines .output-line pre").all_inner_texts()
    counts = [int(line.split()[1]) for line in lines if line.startswith("count ")]
    assert counts == list(range(1, len(counts) + 1))  # each line once, in order


def test_a_filter_that_cannot_be_read_says_what_is_wrong(serve: ServeProcess, admin: Page) -> None:
    answer = admin.goto(f"{serve.url}/panel/runs?state=sleeping&within=between&since=yesterday")
    assert answer is not None and answer.status == 422
    problems = admin.locator("#filter-problems")
    expect(problems).to_contain_text("unknown state 'sleeping'")
    expect(problems).to_contain_text("'yesterday' is not a time")
    expect(admin.locator("#run-rows")).to_contain_text("Fix the filter above")
