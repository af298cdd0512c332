"""The dashboard, the panel's home, in headless Chromium against a real `serve`: runs today by outcome, success
rates, recent failures with their reasons, what runs now, agents, the 24-hour chart (SVG, nothing the CSP blocks),
live as runs change; and a narrowed viewer counts only the robots it may read."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.conftest import StartServe, log_in, wait_until
from tests.robots.conftest import someone

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ROBOTS = {
    "good": [sys.executable, "-c", "print('done')"],
    "bad": [sys.executable, "-c", "raise SystemExit(3)"],
    "slow": [sys.executable, "-c", "import time; time.sleep(600)"],
}


def ended(api: httpx.Client, robot: str) -> str:
    run = api.post(f"/api/v1/robots/{robot}/start")
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    return wait_until(
        lambda: (state := api.get(f"/api/v1/runs/{run_id}").json()["state"]) not in ("starting", "running") and state,
        15,
        message=f"run {run_id} of {robot} to end",
    )


def count(page: Page, outcome: str) -> int:
    return int(page.inner_text(f"#dashboard-figures [data-outcome='{outcome}'] strong"))


def test_the_dashboard(tmp_path: Path, start_serve: StartServe, browser: Browser) -> None:
    serve = start_serve(tmp_path)
    api = serve.api()
    for name, argv in ROBOTS.items():
        assert api.post("/api/v1/robots", json={"name": name, "argv": argv}).status_code == 201
    assert [ended(api, robot) for robot in ("good", "good", "bad")] == ["succeeded", "succeeded", "failed"]
    someone(api, "bob", ["robots:read"], robot_globs=("good",))

    page = browser.new_page()
    refused: list[str] = []

    def csp(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refused.append(message.text)

    page.on("console", csp)
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/dashboard")
    page.goto(f"{serve.url}/panel")  # the panel's home
    assert page.url.endswith("/panel/dashboard")
    page.wait_for_selector("#live-state:text('live')")
    assert (count(page, "total"), count(page, "succeeded"), count(page, "failed")) == (3, 2, 1)
    assert "100 %" in page.inner_text("#success-rates tr[data-robot='good'] [data-field='day']")
    assert "0 %" in page.inner_text("#success-rates tr[data-robot='bad'] [data-field='week']")
    failure = page.inner_text("#recent-failures tbody tr:first-child")
    assert "bad" in failure and "failed" in failure and "3" in failure  # the reason names the exit code
    chart = page.locator("#hours-chart")
    assert "2 succeeded, 1 failed" in str(chart.get_attribute("aria-label"))
    assert page.locator("#hours-chart rect.seg.outcome-succeeded").count() >= 1
    assert page.locator("#hours-chart rect.seg.outcome-failed").count() >= 1
    assert page.inner_text("#agents-online") == "1"

    # Live: a failure and a run going on show up without a reload.
    page.evaluate("window.notReloaded = true")
    assert ended(api, "bad") == "failed"
    page.wait_for_selector("#dashboard-figures [data-outcome='failed'] strong:text-is('2')", timeout=10_000)
    slow = api.post("/api/v1/robots/slow/start").json()
    page.wait_for_selector(f"#running-now tr[data-run='{slow['id']}']", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    assert api.post(f"/api/v1/runs/{slow['id']}/kill").status_code == 200
    page.wait_for_selector(f"#recent-failures tr[data-run='{slow['id']}']", timeout=10_000)
    assert not refused, refused

    # bob reads the robot "good" only: its figures alone, and no agents (he may not list them).
    bob = browser.new_page()
    log_in(bob, serve.url, "bob", "bob-password", "/panel/dashboard")
    assert (count(bob, "total"), count(bob, "succeeded"), count(bob, "failed")) == (2, 2, 0)
    assert bob.locator("#success-rates tbody tr[data-robot]").all_inner_texts()[0].startswith("good")
    assert bob.locator("#success-rates tbody tr[data-robot]").count() == 1
    assert "No failed" in bob.inner_text("#recent-failures")
    assert bob.locator("#dash-agents").count() == 0
    assert bob.locator("#hours-chart rect.seg.outcome-failed").count() == 0
