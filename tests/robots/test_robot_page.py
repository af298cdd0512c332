"""The robot page in headless Chromium: start, pause, resume and stop a demo robot, watching it live."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil
import pytest

from tests.browser import chromium, log_in
from tests.serve import ServeProcess

pytestmark = [pytest.mark.slow, pytest.mark.browser]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"


def test_lifecycle_from_the_robot_page(tmp_path: Path) -> None:
    (tmp_path / "robofleet.toml").write_text(
        "[[robots]]\n"
        'name = "demo-counter"\n'
        f'argv = ["{sys.executable}", "counter.py", "--every", "0.2"]\n'
        f'cwd = "{EXAMPLES}"\n'
        "safe_stop_timeout = 5\n"
    )
    serve = ServeProcess(tmp_path).start(wait="/readyz")
    try:
        with chromium() as browser:
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
            page.click("#action-resume")
            page.wait_for_selector("#runs tbody tr:first-child .badge:text('running')")
            page.click("#action-stop")
            page.wait_for_selector("#runs tbody tr:first-child .badge:text('stopped')", timeout=10_000)
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            page.click("#action-pause")
            page.wait_for_selector(".flash.error:has-text('no active run')")
            page.goto(f"{serve.url}/panel/fleet")
            assert "stopped" in page.inner_text("#fleet-robots tr[data-robot='demo-counter']")
    finally:
        serve.stop()
