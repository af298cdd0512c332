"""The Logs page in headless Chromium: filters, level colours, run links, permalink, live tail."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_logs_page_filters_and_tails(start_serve: StartServe, browser: Browser) -> None:
    serve = start_serve()
    made = serve.token()
    headers = {"Authorization": f"Bearer {made}"}

    def send(*records: dict[str, str]) -> None:
        assert (
            httpx.post(f"{serve.url}/api/v1/logs", json={"records": list(records)}, headers=headers).status_code == 201
        )

    send(
        {"message": "opened the invoice portal", "source": "robot:billing", "run_id": "run-5"},
        {"message": "portal timed out", "source": "robot:billing", "run_id": "run-5", "level": "ERROR"},
        {"message": "agent heartbeat", "source": "agent:pc-01", "level": "DEBUG"},
    )
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/logs")
    assert page.locator("tr.level-error:has-text('portal timed out')").count() == 1
    page.fill("#log-filter input[name=q]", "portal")
    page.click("#log-filter button[type=submit]")
    page.wait_for_url("**q=portal**")
    assert page.locator("#log-table tbody tr").count() == 2
    page.click("#log-table a:has-text('run-5') >> nth=0")
    page.wait_for_url("**run_id=run-5**")
    assert page.locator("#log-table tbody tr").count() == 2
    permalink = page.url
    page.goto(f"{serve.url}/panel/logs?source=robot%3A*&level=ERROR")
    assert [t.strip() for t in page.locator("#log-table td.message").all_inner_texts()] == ["portal timed out"]
    send(*({"message": f"page line {n}", "source": "robot:pager"} for n in range(450)))
    page.goto(f"{serve.url}/panel/logs?source=robot%3Apager")
    first = page.locator("#log-table td.message >> nth=0")
    assert first.inner_text().strip() == "page line 449" and page.locator("#newer").count() == 0
    page.click("#older")
    page.wait_for_url("**cursor=**")
    assert first.inner_text().strip() == "page line 249"
    page.click("#older")
    assert page.locator("#log-table tbody tr").count() == 50 and page.locator("#older").count() == 0
    page.click("#newer")
    page.wait_for_selector("#log-table td.message:text-is('page line 249')")
    page.click("#newer")
    page.wait_for_selector("#log-table td.message:text-is('page line 449')")
    assert first.inner_text().strip() == "page line 449"
    page.goto(permalink)
    assert page.locator("#log-table tbody tr").count() == 2
    page.check("#live-tail")
    page.wait_for_selector("#tail-state:text('live')")
    send(
        {"message": "retrying the portal", "source": "robot:billing", "run_id": "run-5", "level": "WARNING"},
        {"message": "another run", "source": "robot:billing", "run_id": "run-6"},
    )
    page.wait_for_selector("tr.level-warning:has-text('retrying the portal')", timeout=10_000)
    assert page.locator("#log-table tbody tr:has-text('another run')").count() == 0
    assert page.locator("#log-table tbody tr").count() == 3
    # A time typed without a zone (the form's local time) is good for the live tail too.
    page.goto(f"{serve.url}/panel/logs?since=2020-01-01T00:00&source=robot%3Abilling")
    page.check("#live-tail")
    page.wait_for_selector("#tail-state:text('live')")
