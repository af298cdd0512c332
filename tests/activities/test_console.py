"""The debug console: the Python tab's rules, and the actions tab in a real browser with live results."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from tests.conftest import CliResult, MakeUser, StartServe, bearer, log_in


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_python_console_is_off_by_default(client: TestClient, admin_token: str) -> None:
    refused = client.post("/api/v1/console/python", headers=bearer(admin_token), json={"code": "1 + 1"})
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "console_disabled"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_python_console_when_enabled(
    context: Orchestrator, client: TestClient, admin_token: str, make_user: MakeUser
) -> None:
    context.settings = Settings(**{**context.settings.model_dump(), "console": {"python_enabled": True}})
    first = client.post(
        "/api/v1/console/python",
        headers=bearer(admin_token),
        json={"code": "answer = 6 * 7\nprint('computing')\nanswer"},
    ).json()
    assert first == {"output": "computing\n", "result": "42", "error": None}
    again = client.post("/api/v1/console/python", headers=bearer(admin_token), json={"code": "answer + 1"}).json()
    assert again["result"] == "43"  # the namespace lives on between inputs, per user
    broken = client.post("/api/v1/console/python", headers=bearer(admin_token), json={"code": "1 / 0"}).json()
    assert "ZeroDivisionError" in broken["error"]
    operator = make_user("op", ["operator"])
    assert client.post("/api/v1/console/python", headers=bearer(operator), json={"code": "1"}).status_code == 403
    audit = client.get("/api/v1/audit", params={"action": "console.python"}, headers=bearer(admin_token)).json()
    assert any(record["details"]["code"] == "1 / 0" for record in audit["items"])
    denied = client.get(
        "/api/v1/audit", params={"target": "/api/v1/console/python", "outcome": "denied"}, headers=bearer(admin_token)
    ).json()
    assert denied["items"] and denied["items"][0]["actor"].startswith("op")


@pytest.mark.slow
@pytest.mark.browser
def test_console_runs_echo_and_shows_the_result_live(start_serve: StartServe, browser: Browser) -> None:
    serve = start_serve()
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/console")
    page.wait_for_selector("#live-state:text('live')")
    page.fill("#action-search", "echo")
    assert page.locator("#action-list li:not([hidden])").count() == 1
    page.keyboard.press("Enter")
    page.fill("#run-form input[name=message]", "hello from the console")
    page.click("#run-form button[type=submit]")
    page.wait_for_selector("#activity-result [data-field=state]:text('succeeded')", timeout=10_000)
    assert "hello from the console" in page.inner_text("#activity-result")
    row = page.locator("#history tbody tr").first
    assert "system.echo" in row.inner_text() and "succeeded" in row.inner_text()
    # An activity submitted elsewhere (the CLI) shows up in the history by itself.
    token = serve.token()
    httpx.post(
        f"{serve.url}/api/v1/activities",
        json={"action": "system.sleep", "args": {"seconds": 0.2}},
        headers={"Authorization": f"Bearer {token}"},
    )
    page.wait_for_selector("#history tbody tr:has-text('system.sleep'):has-text('succeeded')", timeout=10_000)


@pytest.mark.slow
def test_activity_cli_and_event_stream(start_serve: StartServe) -> None:
    serve = start_serve()
    token = serve.token()

    def cli(*args: str) -> CliResult:
        return serve.cli("activity", *args, env={"ROBOFLEET_CLIENT__TOKEN": token})

    with httpx.stream(
        "GET", f"{serve.url}/api/v1/activities/stream", timeout=20, headers={"Authorization": f"Bearer {token}"}
    ) as stream:
        ran = cli("run", "system.echo", "--args", '{"message": "from the CLI"}', "--wait")
        assert ran.returncode == 0, ran.stderr
        activity = json.loads(ran.stdout)
        assert activity["state"] == "succeeded" and activity["result"] == {"message": "from the CLI"}
        states = []
        for line in stream.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if event["id"] == activity["id"]:
                    states.append(event["state"])
                    if event["state"] == "succeeded":
                        break
        assert states[-1] == "succeeded"
    failed = cli("run", "users.get", "--args", '{"username": "ghost"}', "--wait")
    assert failed.returncode == 1 and json.loads(failed.stdout)["error"]["code"] == "not_found"
    refused = cli("run", "system.echo", "--args", '{"mesage": "typo"}')
    assert refused.returncode == 1 and "message" in refused.stderr
    assert cli("run", "system.echo", "--args", "not json").returncode == 2
    queued = cli("run", "system.sleep", "--args", '{"seconds": 0.1}', "--async")
    assert queued.returncode == 0 and json.loads(queued.stdout)["mode"] == "async"
    assert "system.sleep" in cli("list").stdout
    assert "users.create" in cli("actions", "user").stdout
    no_token = serve.cli("activity", "list")
    assert no_token.returncode == 2 and "token" in no_token.stderr


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_console_code_that_exits_is_audited_and_answered(
    context: Orchestrator, client: TestClient, admin_token: str, tmp_path: Path
) -> None:
    context.settings = Settings(**{**context.settings.model_dump(), "console": {"python_enabled": True}})
    marker = tmp_path / "ran.txt"
    for ending in ("SystemExit", "KeyboardInterrupt"):
        code = f"open({str(marker)!r}, 'w').write('ran')\nraise {ending}"
        answer = client.post("/api/v1/console/python", headers=bearer(admin_token), json={"code": code})
        assert answer.status_code == 200 and ending in answer.json()["error"]
        assert marker.read_text() == "ran"
        audit = client.get("/api/v1/audit", params={"action": "console.python"}, headers=bearer(admin_token)).json()
        assert any(record["details"]["code"] == code for record in audit["items"]), ending
