"""The Fleet page keeps a robot's state apart from how its last run ended (ux-findings defect 18): an idle robot is
never coloured red by a failed run; its last result says failed or stopped, when, and why (the run's reason, no
"exit 143" for a normal stop), and links to the run."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser

from tests.conftest import MakeUser, StartServe, log_in
from tests.robots.conftest import RobotsApi


def row(html: str, robot: str) -> str:
    found = re.search(rf'<tr data-robot="{robot}".*?</tr>', html, re.S)
    assert found, f"no row of {robot}"
    return found.group(0)


def test_state_and_last_result_apart(client: TestClient, robots: RobotsApi, make_user: MakeUser) -> None:
    robots.make("broken", [sys.executable, "-c", "raise SystemExit(3)"])
    robots.make("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    failed = robots.wait_run(robots.start("broken")["id"], "failed")
    sleeping = robots.start("sleeper")
    robots.act(sleeping, "stop")
    robots.wait_run(sleeping["id"], "stopped")
    make_user("ada", ["admin"], password="ada-password")
    assert client.post("/api/v1/auth/login", json={"username": "ada", "password": "ada-password"}).status_code == 200

    fleet = client.get("/panel/fleet").text
    broken = row(fleet, "broken")
    assert '<span class="badge state-idle">idle</span>' in broken  # not red: the robot is idle
    assert f'<a href="/panel/runs/{failed["id"]}" class="badge state-failed">failed</a>' in broken
    assert "exit 3" in broken  # its reason
    stopped = row(fleet, "sleeper")
    assert '<span class="badge state-idle">idle</span>' in stopped and "state-stopped" in stopped
    assert "exit" not in stopped  # a stop is no error: no exit code jargon


@pytest.mark.slow
@pytest.mark.browser
def test_the_same_live(tmp_path: Path, start_serve: StartServe, browser: Browser) -> None:
    serve = start_serve(tmp_path)
    api = serve.api()
    robot = {"name": "broken", "argv": [sys.executable, "-c", "import time; time.sleep(1); raise SystemExit(3)"]}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/fleet")
    page.wait_for_selector("#live-state:text('live')")
    run = api.post("/api/v1/robots/broken/start").json()
    row = "#fleet-robots tr[data-robot='broken']"
    page.wait_for_selector(f"{row} [data-field='state'] .badge.state-running")
    page.wait_for_selector(f"{row} a.badge.state-failed[href='/panel/runs/{run['id']}']", timeout=15_000)
    assert page.inner_text(f"{row} [data-field='state']") == "idle"
    assert page.locator(f"{row} [data-field='state'] .badge.state-idle").count() == 1
    assert "exit 3" in page.inner_text(f"{row} [data-field='result'] .reason")
