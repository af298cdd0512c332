"""The panel in headless Chromium against a real `robofleet serve`: first login, a new operator, logout, login."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import ServeProcess, StartAgent, StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def serve(start_module_serve: StartServe) -> ServeProcess:
    return start_module_serve()


@pytest.fixture
def page(module_browser: Browser) -> Iterator[Page]:
    context = module_browser.new_context()
    yield context.new_page()
    context.close()


def test_admin_creates_an_operator_who_then_logs_in(serve: ServeProcess, page: Page) -> None:
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/access/users")
    page.fill("#new-user input[name=username]", "olivia")
    page.fill("#new-user input[name=password]", "olivia-password")
    page.select_option("#new-user select[name=roles]", ["operator"])
    page.click("#new-user button[type=submit]")
    page.wait_for_selector(".flash.notice:has-text('User olivia created.')")
    assert "operator" in page.inner_text("tr[data-user=olivia]")
    page.click(".sidebar form[action='/panel/logout'] button")
    page.wait_for_url("**/panel/login")

    log_in(page, serve.url, "olivia", "olivia-password", "/panel/fleet")
    assert page.inner_text(".whoami span") == "olivia"
    assert "Agents" in page.inner_text("main")  # an operator sees the Fleet page
    # An operator holds no users:read: the page refuses, and the Users tab is not offered.
    response = page.goto(f"{serve.url}/panel/access/users")
    assert response is not None and response.status == 403
    page.goto(f"{serve.url}/panel/access/tokens")
    assert page.locator("nav.tabs a:has-text('Users')").count() == 0


def test_wrong_password_and_next_redirect(serve: ServeProcess, page: Page) -> None:
    page.goto(f"{serve.url}/panel/access/roles")
    page.wait_for_url("**/panel/login?next=*")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "not-the-password")
    page.click("form[action='/panel/login'] button[type=submit]")
    assert "wrong username or password" in page.inner_text(".flash.error")
    page.fill("input[name=password]", serve.admin_password())
    page.click("form[action='/panel/login'] button[type=submit]")
    page.wait_for_url("**/panel/access/roles")
    assert page.locator("tr[data-role=operator]").count() == 1


def test_every_section_loads_and_the_keyboard_navigates(serve: ServeProcess, page: Page) -> None:
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/fleet")
    for path, marker in (
        ("/panel/sessions", "Sessions"),
        ("/panel/schedules", "New schedule"),
        ("/panel/queues", "New queue"),
        ("/panel/console", "Find an action"),
        ("/panel/fleet", "Agents"),
        ("/panel/robots", "Robots"),
        ("/panel/logs", "Live tail"),
        ("/panel/settings", "[server]"),
        ("/panel/access/audit", "auth.login"),
        ("/panel/access/tokens", "New API token"),
    ):
        page.goto(serve.url + path)
        assert marker in page.inner_text("main"), path
    page.goto(serve.url + "/panel/fleet")
    page.keyboard.press("g")
    page.keyboard.press("a")
    page.wait_for_url("**/panel/access/users")
    page.keyboard.press("?")
    assert page.locator("dialog#keys").is_visible()


def test_tokens_page_shows_the_secret_once_and_it_works(serve: ServeProcess, page: Page) -> None:
    import httpx

    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/access/tokens")
    page.fill("form[data-new] input[name=name]", "from-the-panel")
    page.click("form[data-new] button[type=submit]")
    secret = page.inner_text("#token-secret").strip()
    assert secret.startswith("rf_")
    me = httpx.get(f"{serve.url}/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.json()["username"] == "admin"
    page.goto(f"{serve.url}/panel/access/tokens")
    assert secret not in page.content()


def test_a_form_without_its_csrf_token_is_refused(serve: ServeProcess, page: Page) -> None:
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/access/users")
    response = page.request.post(
        f"{serve.url}/panel/access/users", form={"username": "mallory", "password": "mallory-password"}
    )
    assert response.status == 403
    page.goto(f"{serve.url}/panel/access/users")
    assert page.locator("tr[data-user=mallory]").count() == 0


def test_no_asset_comes_from_another_site(serve: ServeProcess, page: Page) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/console")
    assert requested and all(url.startswith(serve.url) or url.startswith("data:") for url in requested), requested
    assert page.evaluate("typeof htmx") == "object"


def test_static_vendor_files_are_served(serve: ServeProcess, tmp_path: Path) -> None:
    import httpx

    for name in ("htmx.min.js", "sse.js"):
        assert httpx.get(f"{serve.url}/static/vendor/{name}").status_code == 200


def test_an_agent_token_made_in_the_panel_connects_that_agent(
    serve: ServeProcess, page: Page, start_agent: StartAgent
) -> None:
    user = serve.agent_user("pc-panel")
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/access/tokens")
    page.select_option("form[data-new] select[name=user]", user)
    page.fill("form[data-new] input[name=name]", "the agent on pc-panel")
    page.fill("form[data-new] input[name=agent]", "pc-panel")
    page.click("form[data-new] button[type=submit]")
    secret = page.inner_text("#token-secret").strip()
    page.goto(f"{serve.url}/panel/access/tokens")
    assert page.inner_text("tr:has-text('the agent on pc-panel') td:nth-child(4)").strip() == "pc-panel"
    with serve.api() as api:
        start_agent(serve, "pc-panel", token=secret, online=api)
        assert any(agent["name"] == "pc-panel" for agent in api.get("/api/v1/agents").json()["items"])
