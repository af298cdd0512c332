"""Headless Chromium (Debian's) through Playwright, and logging in to the panel of a real `robofleet serve`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Page, base_url: str, username: str, password: str, path: str = "/panel/fleet") -> None:
    page.goto(f"{base_url}{path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form[action='/panel/login'] button[type=submit]")
    page.wait_for_url(f"**{path}")


@contextmanager
def signed_in(
    browser: Browser, base_url: str, username: str, password: str, path: str, *, accept_dialogs: bool = False
) -> Iterator[Page]:
    """A page of a new browser context, signed in as `username` and on `path`; the test fails if a script of the
    page threw meanwhile. With `accept_dialogs`, every confirm() is answered OK."""
    context = browser.new_context()
    page = context.new_page()
    thrown: list[str] = []
    page.on("pageerror", lambda error: thrown.append(str(error)))
    if accept_dialogs:
        page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, base_url, username, password, path)
    yield page
    context.close()
    assert thrown == [], f"a script of the page threw: {thrown}"
