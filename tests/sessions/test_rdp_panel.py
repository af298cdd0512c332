"""An rdp session's page in headless Chromium, on a real `robofleet serve` connected to the loopback xrdp
(tests/kit/rdp.py): its server, user and connection facts (never its password), the remote desktop on screen, and the
connection's buttons: Disconnect (the page follows to stopped, the server session stays), Connect (back to the same
server session), Ctrl+Alt+Del, Log off (confirmed; the server session ends); a viewer sees the screen and no button."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServeProcess, StartServe, signed_in, wait_until
from tests.kit.rdp import (
    RdpServer,
    exclusive_server,
    log_off,
    rdp_server,
    server_session,
    session_body,
    wait_server_session,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
NAME = "remote-desk"


@dataclass
class Remote:
    serve: ServeProcess
    api: httpx.Client
    server: RdpServer


def state(api: httpx.Client) -> str:
    return str(api.get(f"/api/v1/sessions/{NAME}").json()["state"])


@pytest.fixture(scope="module")
def remote(start_module_serve: StartServe) -> Iterator[Remote]:
    server = rdp_server()
    with exclusive_server():
        log_off()
        serve = start_module_serve(env={"ROBOFLEET_SESSIONS__CHECK_SECONDS": "0.5"})
        serve.user("vera", "viewer")
        with serve.api(timeout=40) as api:
            made = api.post("/api/v1/sessions", json=session_body(server, NAME))
            assert made.status_code == 201, made.text
            wait_until(lambda: state(api) == "healthy", 30, message=lambda: api.get(f"/api/v1/sessions/{NAME}").text)
            try:
                yield Remote(serve, api, server)
            finally:
                api.post(f"/api/v1/sessions/{NAME}/disconnect")
                log_off()


@pytest.fixture
def admin(remote: Remote, module_browser: Browser) -> Iterator[Page]:
    with signed_in(
        module_browser,
        remote.serve.url,
        "admin",
        remote.serve.admin_password(),
        f"/panel/sessions/{NAME}",
        accept_dialogs=True,
    ) as page:
        yield page


def test_the_page_shows_the_connection_and_never_the_password(remote: Remote, admin: Page) -> None:
    facts = admin.locator("#session-facts")
    expect(facts).to_contain_text(f"{remote.server.host}:3389")
    expect(facts).to_contain_text(remote.server.user)
    expect(facts).to_contain_text("password set")
    expect(facts.locator("[data-field=connection]")).to_contain_text("kept connected")
    expect(admin.locator("#screen")).to_be_visible(timeout=15_000)
    assert remote.server.password not in admin.content()
    expect(admin.locator("[data-rdp=connect]")).to_be_disabled()


def test_disconnect_and_connect_from_the_buttons_keep_the_server_session(remote: Remote, admin: Page) -> None:
    before = wait_server_session()
    admin.locator("[data-rdp=disconnect]").click()
    expect(admin.locator("#session-facts [data-field=connection]")).to_contain_text(
        "disconnected on request", timeout=15_000
    )
    expect(admin.locator("#session-state")).to_contain_text("stopped", timeout=15_000)
    expect(admin.locator("[data-rdp=connect]")).to_be_enabled()
    assert server_session() == before
    admin.locator("[data-rdp=connect]").click()
    expect(admin.locator("#session-state")).to_contain_text("healthy", timeout=30_000)
    expect(admin.locator("#screen")).to_be_visible(timeout=15_000)
    assert server_session() == before
    admin.locator("[data-rdp=secure-attention]").click()
    expect(admin.locator("#action-status")).to_contain_text("Ctrl+Alt+Del sent", timeout=15_000)


def test_log_off_from_its_button_ends_the_server_session(remote: Remote, admin: Page) -> None:
    wait_until(lambda: state(remote.api) == "healthy", 30)
    before = wait_server_session()
    admin.locator("[data-rdp=logoff]").click()  # the confirmation is accepted
    expect(admin.locator("#action-status")).to_contain_text("Logged off", timeout=40_000)
    expect(admin.locator("#session-state")).to_contain_text("stopped", timeout=40_000)
    wait_until(lambda: server_session() is None or server_session() != before, 20)


def test_a_viewer_sees_no_connection_button(remote: Remote, module_browser: Browser) -> None:
    password = remote.serve.user("vera2", "viewer")
    with signed_in(module_browser, remote.serve.url, "vera2", password, f"/panel/sessions/{NAME}") as page:
        expect(page.locator("#session-facts")).to_contain_text(remote.server.host)
        expect(page.locator("#rdp-controls")).to_have_count(0)
    refused = httpx.post(
        f"{remote.serve.url}/api/v1/sessions/{NAME}/connect",
        headers={"Authorization": f"Bearer {remote.serve.token('vera2')}"},
    )
    assert refused.status_code == 403
