"""`/api/docs` renders Swagger UI in a real browser under the server's Content-Security-Policy, from files served by
robofleet itself: no request leaves the server, nothing is blocked."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.conftest import StartServe

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_swagger_ui_renders_every_operation_from_local_files(browser: Browser, start_serve: StartServe) -> None:
    serve = start_serve()
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    complaints: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: complaints.append(f"failed: {request.url}"))
    page.on("console", lambda message: complaints.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: complaints.append(str(error)))

    response = page.goto(f"{serve.url}/api/docs")
    assert response is not None and response.status == 200
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert len(paths) > 30
    assert any("/api/v1/settings" in path for path in paths)
    assert page.locator(".info .title").inner_text().startswith("robofleet")

    # An operation opens, with its parameters, as a reader would use the page.
    page.locator(".opblock-summary-path", has_text="/api/v1/runs/{run_id}").first.click()
    page.wait_for_selector(".opblock.is-open .parameters-col_name:has-text('run_id')")

    assert not complaints, complaints
    foreign = [url for url in requested if not url.startswith(serve.url) and not url.startswith("data:")]
    assert not foreign, foreign
    assert f"{serve.url}/openapi.json" in requested
    context.close()
