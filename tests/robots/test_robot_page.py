"""The robot page in headless Chromium: start, pause, resume and stop a demo robot, watching it live, and see a
pause on its way and how each run was paused."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"


def test_lifecycle_from_the_robot_page(tmp_path: Path, start_serve: StartServe, browser: Browser) -> None:
    (tmp_path / "robofleet.toml").write_text(
        "[[robots]]\n"
        'name = "demo-counter"\n'
        f'argv = ["{sys.executable}", "counter.py", "--every", "0.2"]\n'
        f'cwd = "{EXAMPLES}"\n'
        "safe_stop_timeout = 5\n"
    )
    serve = start_serve(tmp_path)
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/fleet")
    assert page.locator("#fleet-robots tr[data-robot='demo-counter']").count() == 1
    page.click("a:has-text('demo-counter')")
    page.wait_for_url("**/panel/robots/demo-counter")
    page.wait_for_selector("#live-state:text('live')")
    page.click("#action-start")
    page.wait_for_selector(".flash.notice:has-text('started')")
    page.wait_for_selector("#runs tbody tr:first-child .badge:text('running')")
    page.wait_for_selector("#output:has-text('count 2')", timeout=10_000)
    pid = int(page.inner_text("#runs tbody tr:first-child td:nth-child(3)"))
    page.click("#action-pause")
    page.wait_for_selector("#runs tbody tr:first-child .badge:text('paused')")
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED
    assert page.inner_text("#runs tbody tr:first-child .how-paused") == "frozen"  # no checkpoints
    page.click("#action-resume")
    page.wait_for_selector("#runs tbody tr:first-child .badge:text('running')")
    page.click("#action-stop")
    page.wait_for_selector("#runs tbody tr:first-child .badge:text('stopped')", timeout=10_000)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    # No active run: nothing to pause (it answered 409 once). The buttons are updated live, possibly a moment after
    # the run's row.
    page.wait_for_selector("#action-pause:disabled", timeout=5_000)
    page.goto(f"{serve.url}/panel/fleet")
    assert "stopped" in page.inner_text("#fleet-robots tr[data-robot='demo-counter']")


def test_the_robot_page_shows_a_pause_on_its_way_and_how_each_run_was_paused(
    tmp_path: Path, start_serve: StartServe, browser: Browser
) -> None:
    robots = {
        "steps": ("4", "30"),  # a step of 4 s, well within its safe_stop_timeout: it pauses at its checkpoint
        "long-steps": ("60", "1"),  # its step outlasts the time it has to reach a checkpoint: frozen
    }
    (tmp_path / "robofleet.toml").write_text(
        "".join(
            f'[[robots]]\nname = "{name}"\nargv = ["{sys.executable}", "stepwise.py", "--step", "{step}"]\n'
            f'cwd = "{EXAMPLES}"\nsafe_stop_timeout = {timeout}\n'
            for name, (step, timeout) in robots.items()
        )
    )
    serve = start_serve(tmp_path)
    first_row = "#runs tbody tr:first-child"
    api = serve.api()
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/robots/steps")
    page.wait_for_selector("#live-state:text('live')")
    page.click("#action-start")
    page.wait_for_selector("#output:has-text('step 1 begins')", timeout=10_000)
    page.click("#action-pause")  # mid-step: asked, still running until the step is done
    page.wait_for_selector(f"{first_row} .pausing:text('pausing…')")
    assert page.inner_text(f"{first_row} .badge.state-running") == "running"
    page.wait_for_selector(f"{first_row} .badge:text('paused')", timeout=10_000)  # live, from runs.js
    assert page.inner_text(f"{first_row} .how-paused") == "cooperative"
    assert page.locator(f"{first_row} .pausing").count() == 0
    page.reload()  # and rendered by the server the same way
    assert page.inner_text(f"{first_row} .how-paused") == "cooperative"
    page.click("#action-resume")
    page.wait_for_selector(f"{first_row} .badge:text('running')")
    assert page.locator(f"{first_row} .how-paused, {first_row} .pausing").count() == 0
    page.click("#action-stop")
    page.wait_for_selector(f"{first_row} .badge:text('stopped')", timeout=10_000)

    # Paused from elsewhere (the API) while the page is open: every change arrives live.
    page.goto(f"{serve.url}/panel/robots/long-steps")
    page.wait_for_selector("#live-state:text('live')")
    run = api.post("/api/v1/robots/long-steps/start").json()
    page.wait_for_selector("#output:has-text('step 1 begins')", timeout=10_000)
    assert api.post(f"/api/v1/runs/{run['id']}/pause").json()["pause_asked_at"]
    page.wait_for_selector(f"#run-{run['id']} .pausing:text('pausing…')")
    page.wait_for_selector(f"#run-{run['id']} .badge:text('paused')", timeout=10_000)
    frozen = "frozen: no checkpoint reached within 1 s: the process tree was frozen"
    assert page.inner_text(f"#run-{run['id']} .how-paused") == frozen
    page.reload()
    assert page.inner_text(f"#run-{run['id']} .how-paused") == frozen
    assert api.post(f"/api/v1/runs/{run['id']}/kill").status_code == 200
