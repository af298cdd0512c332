"""The robot page says when a run asked to stop is killed, live and after a reload, and the run ends "stopped"."""

from __future__ import annotations

import sys

import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]


def test_a_stopping_run_shows_when_it_is_killed(start_serve: StartServe, browser: Browser) -> None:
    serve = start_serve()
    api = serve.api()
    assert api.post("/api/v1/robots", json={"name": "stubborn", "argv": STUBBORN, "safe_stop_timeout": 8}).is_success
    run = api.post("/api/v1/robots/stubborn/start").json()
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/robots/stubborn")
    page.wait_for_selector("#live-state:text('live')")
    row = f"#run-{run['id']}"
    page.wait_for_selector(f"{row} .badge:text('running')")

    deadline = api.post(f"/api/v1/runs/{run['id']}/stop").json()["stop_deadline"]
    page.wait_for_selector(f"{row} .badge:text('stopping')")  # live, over SSE
    expected = "killed at " + deadline.replace("T", " ")[:19]
    assert page.inner_text(f"{row} .stop-deadline") == expected
    page.reload()
    assert page.inner_text(f"{row} .stop-deadline") == expected
    page.wait_for_selector(f"{row} .badge:text('stopped')", timeout=30_000)
    assert page.locator(f"{row} .stop-deadline").count() == 0
