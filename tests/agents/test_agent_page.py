"""The agent page in headless Chromium: machine, processes, remote shell and upload for administrators only."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_agent_page_shell_and_upload(tmp_path: Path, start_serve: StartServe, browser: Browser) -> None:
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    serve = start_serve(env={"ROBOFLEET_AGENTS__ALLOWED_ROOTS": f'["{exchange}"]'})
    serve.cli("user", "create", "opal", "--role", "operator", "--password-stdin", stdin="opal-password\n")
    upload = tmp_path / "payload.txt"
    upload.write_text("hello agent\n")
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/fleet")
    page.click("#agents a:has-text('local')")
    page.wait_for_url("**/panel/agents/local")
    assert "cores" in page.inner_text("#system")
    assert page.locator("#processes tbody tr").count() > 3
    assert "command" in page.inner_text("#processes thead").lower()
    page.fill("#shell-command", "echo shell-works")
    page.click("#shell-form button[type=submit]")
    page.wait_for_selector(".shell-result:has-text('shell-works')")
    page.set_input_files("input[type=file]", str(upload))
    page.fill("input[name=path]", str(exchange / "in.txt"))
    page.click("button:has-text('Upload')")
    page.wait_for_selector(".flash.notice:has-text('Uploaded 12 bytes')")
    assert (exchange / "in.txt").read_text() == "hello agent\n"
    page.fill("input[name=path]", "/etc/robofleet-should-not-write")
    page.set_input_files("input[type=file]", str(upload))
    page.click("button:has-text('Upload')")
    page.wait_for_selector(".flash.error:has-text('allowed roots')")

    operator = browser.new_page()
    log_in(operator, serve.url, "opal", "opal-password", "/panel/agents/local")
    assert "cores" in operator.inner_text("#system")
    assert operator.locator("#shell-form").count() == 0
    # Command lines carry secrets (an agent's token once did): an operator sees the processes without them.
    assert operator.locator("#processes tbody tr").count() > 3
    assert "command" not in operator.inner_text("#processes thead").lower()
