"""Robots made, changed and deleted from the panel in headless Chromium, on a real `robofleet serve`: the forms go
through RobotsService, so the REST API sees the same robots, and a viewer can neither see nor post the forms."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.conftest import ServeProcess, StartServe, log_in

pytestmark = [pytest.mark.slow, pytest.mark.browser]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"
ROBOT = "forms-counter"


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory, start_module_serve: StartServe) -> ServeProcess:
    workdir = tmp_path_factory.mktemp("robot-forms")
    (workdir / "robofleet.toml").write_text(
        f'[[robots]]\nname = "from-file"\nargv = ["{sys.executable}", "counter.py"]\ncwd = "{EXAMPLES}"\n'
    )
    serve = start_module_serve(workdir)
    serve.user("vera", "viewer")
    return serve


@pytest.fixture(scope="module")
def api(serve: ServeProcess) -> Iterator[httpx.Client]:
    with serve.api(timeout=5) as client:
        yield client


def fill_new_robot(page: Page, env: str) -> None:
    form = "#new-robot"
    page.fill(f"{form} [name=name]", ROBOT)
    page.fill(f"{form} [name=argv]", f"{sys.executable}\ncounter.py\n--every\n0.2")
    page.fill(f"{form} [name=cwd]", str(EXAMPLES))
    page.fill(f"{form} [name=env]", env)
    page.fill(f"{form} [name=safe_stop_timeout]", "5")
    page.fill(f"{form} [name=max_runtime]", "600")
    page.select_option(f"{form} [name='restart.policy']", "on-failure")
    page.fill(f"{form} [name='restart.give_up_after']", "3")
    page.fill(f"{form} [name=tags]", "demo, forms")
    page.fill(f"{form} [name=description]", "counts for the form test")


def stored_env(serve: ServeProcess, name: str) -> dict[str, str]:
    with sqlite3.connect(serve.workdir / "robofleet-data" / "robofleet.db") as db:
        row = db.execute("SELECT env FROM robots WHERE name = ?", (name,)).fetchone()
    return dict(json.loads(row[0]))


def test_an_admin_creates_edits_runs_and_deletes_a_robot(
    serve: ServeProcess, api: httpx.Client, browser: Browser
) -> None:
    page = browser.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/robots")

    # "n" unfolds the New robot form; a bad env line is named and nothing is saved, what was typed stays.
    page.keyboard.press("n")
    assert page.evaluate("document.activeElement.name") == "name"
    fill_new_robot(page, "GREETING=hello\nAPI_TOKEN=s3cret-value\nNO_EQUALS_SIGN")
    page.click("#create-robot")
    page.wait_for_selector("#form-problems:has-text('Nothing was saved')")
    assert "NO_EQUALS_SIGN" in page.inner_text("#error-env")
    assert "Environment" in page.inner_text("#form-problems")
    assert page.input_value("#new-robot [name=name]") == ROBOT
    assert page.input_value("#new-robot [name=tags]") == "demo, forms"
    assert api.get(f"/api/v1/robots/{ROBOT}").status_code == 404

    page.fill("#new-robot [name=env]", "GREETING=hello\nAPI_TOKEN=s3cret-value")
    page.click("#create-robot")
    page.wait_for_selector(f".flash.notice:has-text('Robot {ROBOT} created')")
    assert page.locator(f"#robots tr[data-robot='{ROBOT}']").count() == 1
    shown = api.get(f"/api/v1/robots/{ROBOT}").json()
    assert shown["argv"] == [sys.executable, "counter.py", "--every", "0.2"] and shown["cwd"] == str(EXAMPLES)
    assert shown["env"] == {"GREETING": "hello", "API_TOKEN": "********"}
    assert shown["tags"] == ["demo", "forms"] and shown["max_runtime"] == 600 and shown["safe_stop_timeout"] == 5
    assert shown["restart"]["policy"] == "on-failure" and shown["restart"]["give_up_after"] == 3

    # The same name twice: the service's conflict, shown on the name field.
    page.keyboard.press("n")
    fill_new_robot(page, "")
    page.click("#create-robot")
    page.wait_for_selector("#error-name:has-text('exists already')")

    # Edit: prefilled, secrets masked in the page, kept in the store when left masked.
    page.goto(f"{serve.url}/panel/robots/{ROBOT}")
    assert "s3cret-value" not in page.content()
    page.click("#edit summary")
    assert page.input_value("#edit-robot [name=env]") == "GREETING=hello\nAPI_TOKEN=********"
    assert page.input_value("#edit-robot [name=safe_stop_timeout]") == "5"
    page.fill("#edit-robot [name=description]", "edited in the panel")
    page.fill("#edit-robot [name=tags]", "demo, edited")
    page.click("#save-robot")
    page.wait_for_selector(".flash.notice:has-text('saved: description, tags')")
    assert page.inner_text("#robot-description") == "edited in the panel"
    assert "#edited" in page.inner_text("#robot-tags")
    shown = api.get(f"/api/v1/robots/{ROBOT}").json()
    assert shown["description"] == "edited in the panel" and shown["tags"] == ["demo", "edited"]
    assert stored_env(serve, ROBOT) == {"GREETING": "hello", "API_TOKEN": "s3cret-value"}

    # A mask typed for a name that has no stored secret: the service refuses it, named on the env field.
    page.click("#edit summary")
    page.fill("#edit-robot [name=env]", "GREETING=hello\nAPI_TOKEN=********\nDB_PASSWORD=********")
    page.click("#save-robot")
    page.wait_for_selector("#error-env:has-text('DB_PASSWORD')")
    assert "Environment" in page.inner_text("#form-problems")
    assert stored_env(serve, ROBOT) == {"GREETING": "hello", "API_TOKEN": "s3cret-value"}
    page.goto(f"{serve.url}/panel/robots/{ROBOT}")

    # A number out of range, past the browser's own checks: named, nothing saved, the typing kept.
    page.click("#edit summary")
    page.eval_on_selector("#edit-robot", "form => { form.noValidate = true; }")
    page.fill("#edit-robot [name=safe_stop_timeout]", "99999")
    page.fill("#edit-robot [name=description]", "never saved")
    page.click("#save-robot")
    page.wait_for_selector("#error-safe_stop_timeout:has-text('3600')")
    assert "Safe stop timeout" in page.inner_text("#form-problems")
    assert page.input_value("#edit-robot [name=description]") == "never saved"
    shown = api.get(f"/api/v1/robots/{ROBOT}").json()
    assert shown["safe_stop_timeout"] == 5 and shown["description"] == "edited in the panel"

    # A form post without the CSRF token is refused.
    assert page.request.post(f"{serve.url}/panel/robots/{ROBOT}/delete", form={}).status == 403

    # Run it, refuse to delete it while running, stop it, delete it.
    page.goto(f"{serve.url}/panel/robots/{ROBOT}")
    page.wait_for_selector("#live-state:text('live')")
    page.click("#action-start")
    page.wait_for_selector("#runs tbody tr:first-child .badge:text('running')")
    page.wait_for_selector("#output:has-text('count 2')", timeout=10_000)
    page.click("#action-delete")
    page.wait_for_selector(".flash.error:has-text('active runs')")
    page.click("#action-stop")
    page.wait_for_selector("#runs tbody tr:first-child .badge:text('stopped')", timeout=10_000)
    page.click("#action-delete")
    page.wait_for_selector(f".flash.notice:has-text('Robot {ROBOT} deleted')")
    assert page.url.endswith("/panel/robots")
    assert page.locator(f"#robots tr[data-robot='{ROBOT}']").count() == 0
    assert api.get(f"/api/v1/robots/{ROBOT}").status_code == 404

    # A robot of the settings file says so.
    page.goto(f"{serve.url}/panel/robots/from-file")
    assert "Managed by the settings file" in page.inner_text("#config-managed")


def test_a_viewer_gets_no_forms_and_cannot_post_them(serve: ServeProcess, api: httpx.Client, browser: Browser) -> None:
    made = api.post("/api/v1/robots", json={"name": "api-made", "argv": [sys.executable, "-c", "pass"]})
    assert made.status_code == 201, made.text
    page = browser.new_page()
    log_in(page, serve.url, "vera", "vera-password", "/panel/robots")
    assert page.locator("#robots tr[data-robot='api-made']").count() == 1
    assert page.locator("#new-robot-box, form[data-new]").count() == 0
    page.click("a:has-text('api-made')")
    page.wait_for_url("**/panel/robots/api-made")
    assert page.locator("#edit, #edit-robot, #action-delete, #action-start").count() == 0

    csrf = page.get_attribute("form[action='/panel/logout'] input[name=csrf_token]", "value") or ""
    posts = {
        "/panel/robots": {"name": "sneaky", "argv": "true"},
        "/panel/robots/api-made": {"description": "changed by a viewer"},
        "/panel/robots/api-made/delete": {},
    }
    for path, fields in posts.items():
        answer = page.request.post(f"{serve.url}{path}", form={"csrf_token": csrf, **fields})
        assert answer.status == 403, (path, answer.status)
    assert api.get("/api/v1/robots/sneaky").status_code == 404
    assert api.get("/api/v1/robots/api-made").json()["description"] == ""
