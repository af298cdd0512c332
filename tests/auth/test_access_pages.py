"""The Access pages in headless Chromium (issue 15, defect 8): the role form's permission picker, grouped by domain,
that keeps every field when the server refuses it; and the lists of people without robofleet's own (each run's token
and its audit records, the user robot-runs) unless asked."""

from __future__ import annotations

import sys

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import ServeProcess, StartServe, log_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def serve(start_serve: StartServe) -> ServeProcess:
    return start_serve()


@pytest.fixture
def page(serve: ServeProcess, browser: Browser) -> Page:
    opened = browser.new_page()
    log_in(opened, serve.url, "admin", serve.admin_password(), "/panel/access/roles")
    return opened


def ticked(page: Page, form: str) -> list[str]:
    return sorted(page.locator(f"{form} input[name=permissions]:checked").evaluate_all("els => els.map(e => e.value)"))


def test_the_role_form_picks_permissions_by_domain_and_keeps_every_field_when_refused(page: Page) -> None:
    form = "#new-role"
    domains = page.locator(f"{form} fieldset.permission-group").evaluate_all("els => els.map(e => e.dataset.domain)")
    assert {"robots", "logs", "agents", "users"} <= set(domains)
    robots = page.locator(f"{form} fieldset.permission-group[data-domain=robots]")
    assert "Start robots" in robots.inner_text()  # each permission says what it allows
    # "operator" is taken (built in): the server refuses, and everything typed and ticked comes back.
    page.fill(f"{form} input[name=name]", "operator")
    page.fill(f"{form} input[name=description]", "Runs the invoice robots")
    for permission in ("robots:read", "robots:start", "logs:read"):
        page.check(f"{form} input[name=permissions][value='{permission}']")
    page.fill(f"{form} input[name=robot_globs]", "invoices billing-*")
    page.fill(f"{form} input[name=robot_tags]", "finance")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#new-role-problems")
    assert "exists already" in page.inner_text("#new-role-error-name")
    assert page.input_value(f"{form} input[name=name]") == "operator"
    assert page.input_value(f"{form} input[name=description]") == "Runs the invoice robots"
    assert ticked(page, form) == ["logs:read", "robots:read", "robots:start"]
    assert page.input_value(f"{form} input[name=robot_globs]") == "invoices billing-*"
    assert page.input_value(f"{form} input[name=robot_tags]") == "finance"

    # A permission no picker offers (a form changed by hand) is refused with the name meant.
    page.fill(f"{form} input[name=name]", "invoice-runner")
    page.locator(f"{form} input[name=permissions][value='robots:start']").evaluate("box => box.value = 'robots:strat'")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector("#new-role-error-permissions")
    assert "robots:start" in page.inner_text("#new-role-error-permissions")
    assert page.input_value(f"{form} input[name=description]") == "Runs the invoice robots"

    page.check(f"{form} input[name=permissions][value='robots:start']")
    page.check(f"{form} input[name=permissions][value='agents:*']")  # a whole domain
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(".flash.notice:has-text('Role invoice-runner created')")
    row = page.locator("tr[data-role=invoice-runner]")
    assert {"agents:*", "logs:read", "robots:read", "robots:start"} <= set(row.locator(".badge").all_inner_texts())

    # Its Edit form is the same picker, ticked as the role is.
    row.locator("summary").click()
    edit = "#edit-invoice-runner"
    assert ticked(page, edit) == ["agents:*", "logs:read", "robots:read", "robots:start"]
    page.uncheck(f"{edit} input[name=permissions][value='agents:*']")
    page.click(f"{edit} button[type=submit]")
    page.wait_for_selector(".flash.notice:has-text('Role invoice-runner saved')")
    assert "agents:*" not in page.locator("tr[data-role=invoice-runner]").inner_text()


def test_run_tokens_and_the_run_user_are_hidden_unless_asked(serve: ServeProcess, page: Page) -> None:
    api = serve.api()
    api.post("/api/v1/robots", json={"name": "brief", "argv": [sys.executable, "-c", "pass"]})
    run = api.post("/api/v1/robots/brief/start").json()
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "succeeded", 20, 0.1, "the run")
    run_token = f"run {run['id']}"

    page.goto(f"{serve.url}/panel/access/tokens")
    assert run_token not in page.inner_text("#tokens")
    page.check("#internal-filter input[name=internal]")
    page.click("#internal-filter button[type=submit]")
    page.wait_for_url("**/panel/access/tokens?internal=true")
    assert run_token in page.inner_text("#tokens")

    page.goto(f"{serve.url}/panel/access/users")
    assert page.locator("tr[data-user=robot-runs]").count() == 0 and page.locator("tr[data-user=admin]").count()
    page.check("#internal-filter input[name=internal]")
    page.click("#internal-filter button[type=submit]")
    page.wait_for_selector("tr[data-user=robot-runs]")

    page.goto(f"{serve.url}/panel/access/audit?action=token.")
    assert "robots" not in page.locator("#audit tbody td:nth-child(2)").all_inner_texts()
    page.check("form[data-filter] input[name=internal]")
    page.click("form[data-filter] button[type=submit]")
    page.wait_for_url("**internal=true**")
    assert "robots" in page.locator("#audit tbody td:nth-child(2)").all_inner_texts()
