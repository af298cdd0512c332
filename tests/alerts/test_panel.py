"""The alerts pages in headless Chromium on one real `robofleet serve`: "g e" goes to the inbox, where an alert
raised by a failed run appears by itself (refreshed), is opened with its deliveries, and acknowledged; the rule
form refused keeps what was typed and says why; the delivery log lists the attempts; a viewer sees no control."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.alerts.conftest import AlertsApi, SmtpSink, robot_argv, serve_env
from tests.conftest import ServeProcess, StartServe, log_in, signed_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def serve(start_serve: StartServe, smtp_sink: SmtpSink) -> ServeProcess:
    serve = start_serve(env=serve_env("sqlite", smtp_sink.port), wait="/readyz")
    made = serve.cli("user", "create", "vera", "--role", "viewer", "--password-stdin", stdin="vera-password\n")
    assert made.returncode == 0, made.stderr
    return serve


@pytest.fixture
def admin(serve: ServeProcess, browser: Browser) -> Iterator[Page]:
    with signed_in(browser, serve.url, "admin", serve.admin_password(), "/panel/fleet") as page:
        yield page


def test_the_inbox_shows_a_new_alert_live_and_acknowledges_it(
    serve: ServeProcess, admin: Page, smtp_sink: SmtpSink
) -> None:
    page = admin
    api = AlertsApi(serve.api())
    api.email_channel("ops-mail", "ops@example.test")
    api.rule("failed", "run_failed", "ops-mail")
    api.robot("crasher", robot_argv(code=5))
    page.keyboard.press("g")
    page.keyboard.press("e")
    page.wait_for_url("**/panel/alerts")
    expect(page.locator("#alert-rows")).to_contain_text("No alerts open")

    run = api.start("crasher")  # while the page is open: the row comes by itself
    row = page.locator("#alert-rows tr[data-alert]")
    expect(row).to_have_count(1, timeout=15_000)
    expect(row).to_contain_text(f"run {run['id']} of crasher failed")
    smtp_sink.wait(1)

    row.locator("a").first.click()
    expect(page.locator("#alert")).to_contain_text("exit 5")
    expect(page.locator("#deliveries")).to_contain_text("ops-mail")
    expect(page.locator("#deliveries")).to_contain_text("delivered", timeout=10_000)
    page.goto(f"{serve.url}/panel/alerts")
    page.locator("[data-ack]").first.click()
    expect(page.locator(".flash.notice, .flash[role=status]")).to_contain_text("acknowledged")
    expect(page.locator("#alert-rows")).to_contain_text("No alerts open")
    page.select_option("select[name=state]", "acknowledged")
    page.click("#alert-filters button[type=submit]")
    expect(page.locator("#alert-rows")).to_contain_text("acknowledged by")

    page.click("nav.tabs >> text=Delivery log")
    expect(page.locator("#attempts")).to_contain_text("ops-mail")
    expect(page.locator("#attempts")).to_contain_text("SMTP 250")


def test_a_refused_rule_keeps_what_was_typed_and_says_why(serve: ServeProcess, admin: Page) -> None:
    page = admin
    page.goto(f"{serve.url}/panel/alerts/rules")
    page.click("#new-rule-box summary")
    page.fill("#new-rule input[name=name]", "too-eager")
    page.select_option("#new-rule select[name=kind]", "run_too_long")
    page.fill("#new-rule input[name=match]", "billing-*")
    page.fill("#new-rule input[name=threshold]", "0.5")
    page.click("#create-rule")
    expect(page.locator("#rule-problem")).to_contain_text("threshold")
    expect(page.locator("#new-rule input[name=name]")).to_have_value("too-eager")
    expect(page.locator("#new-rule input[name=match]")).to_have_value("billing-*")
    page.fill("#new-rule input[name=threshold]", "3")
    page.click("#create-rule")
    expect(page.locator("#rules")).to_contain_text("too-eager")
    expect(page.locator("#rules")).to_contain_text("billing-*")


def test_a_viewer_sees_alerts_but_no_control(serve: ServeProcess, browser: Browser) -> None:
    api = AlertsApi(serve.api())
    api.rule("failed", "run_failed")
    api.robot("crasher", robot_argv(code=5))
    api.start("crasher")
    api.wait_alerts(1)
    context = browser.new_context()
    page = context.new_page()
    log_in(page, serve.url, "vera", "vera-password", "/panel/alerts")
    expect(page.locator("#alert-rows tr[data-alert]")).to_have_count(1)
    expect(page.locator("[data-ack]")).to_have_count(0)
    page.goto(f"{serve.url}/panel/alerts/rules")
    expect(page.locator("#new-rule-box")).to_have_count(0)
    expect(page.locator("#rules")).to_contain_text("failed")
    context.close()
