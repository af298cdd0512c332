"""The panel's robot forms for someone with robots:write but not agents:admin (an operator), in headless Chromium on
a real `robofleet serve`: the command line shows read-only and says why, the rest saves, and a command line posted
anyway is refused with the service's message naming agents:admin."""

from __future__ import annotations

import sys

import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARGV = [sys.executable, "-c", "print('hello')"]


def test_an_operator_edits_a_robot_but_not_its_command_line(start_serve: StartServe, browser: Browser) -> None:
    serve = start_serve()
    made = serve.cli("user", "create", "opal", "--role", "operator", "--password-stdin", stdin="opal-password\n")
    assert made.returncode == 0, made.stderr
    api = serve.api()
    assert api.post("/api/v1/robots", json={"name": "mailer", "argv": ARGV, "env": {"API_KEY": "k"}}).is_success

    page = browser.new_page()
    log_in(page, serve.url, "opal", "opal-password", "/panel/robots")
    # No New robot form: creating one defines a command line.
    assert page.locator("#new-robot").count() == 0
    assert "agents:admin" in page.inner_text("#command-locked")

    page.goto(f"{serve.url}/panel/robots/mailer")
    page.click("#edit summary")
    assert "agents:admin" in page.inner_text("#edit-robot #command-locked")
    for field in ("agent", "argv", "cwd", "env"):
        assert page.locator(f"#edit-robot [name={field}]").get_attribute("readonly") is not None, field
    page.fill("#edit-robot [name=description]", "sends the mail")
    page.click("#save-robot")
    page.wait_for_selector(".flash.notice:has-text('saved: description')")

    # A command line posted past the read-only fields: refused by the service, nothing saved.
    page.click("#edit summary")
    page.eval_on_selector("#edit-robot [name=argv]", "field => field.removeAttribute('readonly')")
    page.fill("#edit-robot [name=argv]", "sh\n-c\nid")
    page.fill("#edit-robot [name=description]", "never saved")
    page.click("#save-robot")
    page.wait_for_selector("#form-problems:has-text('agents:admin')")
    shown = api.get("/api/v1/robots/mailer").json()
    assert shown["argv"] == ARGV and shown["description"] == "sends the mail"

    # A crafted New robot post gets the same refusal.
    refused = page.request.post(
        f"{serve.url}/panel/robots",
        form={
            "csrf_token": page.input_value("#edit-robot [name=csrf_token]"),
            "name": "crafted",
            "agent": "local",
            "argv": "sh\n-c\nid",
            "safe_stop_timeout": "30",
            "max_concurrent": "1",
            "restart.policy": "never",
            "restart.backoff_seconds": "5",
            "restart.give_up_after": "5",
            "restart.window_seconds": "600",
        },
    )
    assert refused.status == 403 and "agents:admin" in refused.text()
    assert api.get("/api/v1/robots/crafted").status_code == 404
