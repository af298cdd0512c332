"""The robot page in headless Chromium (issue 15, defect 5): it opens with its run's output so far, then follows it
live; its buttons act without reloading the page (the output stays), and only those that fit the run's state are
enabled, following changes made elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe, log_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"


def test_output_so_far_then_live_and_buttons_without_a_reload(
    tmp_path: Path, start_serve: StartServe, browser: Browser
) -> None:
    (tmp_path / "robofleet.toml").write_text(
        "[[robots]]\n"
        'name = "demo-counter"\n'
        f'argv = ["{sys.executable}", "counter.py", "--every", "0.2"]\n'
        f'cwd = "{EXAMPLES}"\n'
        "safe_stop_timeout = 5\n"
    )
    serve = start_serve(tmp_path)
    api = serve.api()
    run = api.post("/api/v1/robots/demo-counter/start").json()
    params = {"run_id": str(run["id"]), "order": "asc", "limit": 100}
    wait_until(lambda: len(api.get("/api/v1/logs", params=params).json()["items"]) >= 3, 15, message="3 lines")

    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/robots/demo-counter")
    # What the run wrote before the page opened is there at once, then it goes on.
    assert f"#{run['id']} count 1\n" in page.inner_text("#output")
    page.wait_for_selector("#live-state:text('live')")
    page.wait_for_selector(f"#output:has-text('#{run['id']} count 8')", timeout=10_000)
    assert page.inner_text("#output").count(f"#{run['id']} count 2\n") == 1  # rendered, not streamed again

    # Running: Start (at most one run at once) and Resume are off.
    assert page.is_disabled("#action-start") and page.is_disabled("#action-resume")
    assert page.is_enabled("#action-pause") and page.is_enabled("#action-stop") and page.is_enabled("#action-kill")
    page.evaluate("window.notReloaded = true")  # gone with any reload
    page.click("#action-pause")
    page.wait_for_selector("#controls-notice:has-text('Pause: run')")
    page.wait_for_selector("#action-resume:enabled")
    assert page.is_disabled("#action-pause")
    assert page.evaluate("window.notReloaded") is True
    assert f"#{run['id']} count 1\n" in page.inner_text("#output")  # the output stayed

    page.click("#action-resume")
    page.wait_for_selector("#action-pause:enabled")
    # Stopped from elsewhere: the buttons follow, live.
    assert api.post(f"/api/v1/runs/{run['id']}/stop").status_code == 200
    page.wait_for_selector("#action-start:enabled", timeout=15_000)
    for action in ("pause", "resume", "stop", "kill", "restart"):
        assert page.is_disabled(f"#action-{action}"), action

    page.click("#action-start")
    page.wait_for_selector("#controls-notice:has-text('started')")
    newest = api.get("/api/v1/runs", params={"robot": "demo-counter", "limit": 1}).json()["items"][0]
    assert newest["id"] != run["id"]
    page.wait_for_selector(f"#output:has-text('#{newest['id']} count 3')", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    page.once("dialog", lambda dialog: dialog.accept())  # "Kill every process of demo-counter's active runs?"
    page.click("#action-kill")
    page.wait_for_selector("#runs tbody tr:first-child .badge:text('killed')", timeout=10_000)

    # Opened after the run ended: its last run's output.
    page.reload()
    assert f"#{newest['id']} count 1\n" in page.inner_text("#output")
    assert page.is_enabled("#action-start") and page.is_disabled("#action-stop")
