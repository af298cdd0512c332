"""The Logs page's order toggle in headless Chromium: newest first by default, oldest first by keyboard, kept by the
filter and the pager, new records of the live tail at the end that fits the order; a traceback reads as one row."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_the_order_toggle(start_serve: StartServe, browser: Browser) -> None:
    serve = start_serve()
    headers = {"Authorization": f"Bearer {serve.token()}"}

    def send(*messages: str, level: str = "INFO") -> None:
        records = [{"message": m, "source": "robot:billing", "run_id": "run-9", "level": level} for m in messages]
        assert httpx.post(f"{serve.url}/api/v1/logs", json={"records": records}, headers=headers).status_code == 201

    send(*(f"line {n}" for n in range(1, 251)))
    send("Traceback (most recent call last):\n  File \"bill.py\", line 3\nKeyError: 'total'", level="ERROR")
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/logs?run_id=run-9")
    messages = page.locator("#log-table td.message")
    assert messages.nth(0).inner_text().splitlines() == [
        "Traceback (most recent call last):",
        '  File "bill.py", line 3',
        "KeyError: 'total'",
    ]
    assert messages.nth(1).inner_text().strip() == "line 250"
    toggle = page.locator("#order-toggle")
    assert toggle.inner_text().startswith("Newest first")
    toggle.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**order=asc**")
    assert [messages.nth(n).inner_text().strip() for n in range(3)] == ["line 1", "line 2", "line 3"]
    assert page.locator("#order-toggle").inner_text().startswith("Oldest first")
    assert page.locator("#older").count() == 0
    page.click("#newer")
    page.wait_for_url("**cursor=**")
    assert messages.nth(0).inner_text().strip() == "line 201"
    assert messages.last.inner_text().startswith("Traceback")

    page.goto(f"{serve.url}/panel/logs?run_id=run-9&order=asc")
    page.fill("#log-filter input[name=q]", "line")
    page.press("#log-filter input[name=q]", "Enter")
    page.wait_for_url("**q=line**")
    assert "order=asc" in page.url and messages.nth(0).inner_text().strip() == "line 1"

    page.goto(f"{serve.url}/panel/logs?run_id=run-9&order=asc&q=fresh")
    page.check("#live-tail")
    page.wait_for_selector("#tail-state:text('live')")
    send("fresh one")
    send("fresh two")
    page.wait_for_selector("#log-table td.message:text-is('fresh two')")
    assert [t.strip() for t in messages.all_inner_texts()] == ["fresh one", "fresh two"]  # oldest first, as the page
    page.close()
