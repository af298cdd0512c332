"""Who sees what on the Runs and run pages: a reader narrowed to some robots lists and opens only their runs (another
robot's run is not found, as if it did not exist), and reads a run's output only with logs:read."""

from __future__ import annotations

import sys

from fastapi.testclient import TestClient

from tests.conftest import MakeUser, bearer
from tests.robots.conftest import RobotsApi

PRINTS = [sys.executable, "-c", "print('the invoice total is 120.00')"]


def test_the_runs_pages_show_a_reader_only_what_it_may_see(
    client: TestClient, admin_token: str, make_user: MakeUser, robots: RobotsApi
) -> None:
    robots.make("billing", PRINTS)
    robots.make("payroll", PRINTS)
    billing = robots.wait_run(robots.start("billing")["id"], "succeeded")
    payroll = robots.wait_run(robots.start("payroll")["id"], "succeeded")
    robots.wait_output(billing, "the invoice total is 120.00")
    role = {"name": "billing-watch", "permissions": ["robots:read"], "robot_globs": ["billing"]}
    assert client.post("/api/v1/roles", json=role, headers=bearer(admin_token)).status_code == 201
    reader = bearer(make_user("watcher", ["billing-watch"]))

    listed = client.get("/panel/runs", headers=reader)
    assert listed.status_code == 200
    assert f'data-run="{billing["id"]}"' in listed.text and f'data-run="{payroll["id"]}"' not in listed.text
    assert client.get(f"/panel/runs/{payroll['id']}", headers=reader).status_code == 404

    page = client.get(f"/panel/runs/{billing['id']}", headers=reader)
    assert page.status_code == 200 and 'id="output-refused"' in page.text
    assert "the invoice total is 120.00" not in page.text
    full = client.get(f"/panel/runs/{billing['id']}", headers=bearer(admin_token))
    assert "the invoice total is 120.00" in full.text and 'id="output-refused"' not in full.text

    assert client.get("/panel/runs", params={"state": "sleeping"}, headers=reader).status_code == 422
    assert client.get("/panel/runs/0", headers=reader).status_code in (404, 422)
