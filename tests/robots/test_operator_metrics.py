"""/metrics has what an operator graphs, beside the HTTP figures: runs by robot and state, a histogram of how long
runs ran, the agents connected (and each known agent's state), and activities by state; read as a scraper does."""

from __future__ import annotations

import re
import sys

from fastapi.testclient import TestClient

from tests.conftest import bearer
from tests.robots.conftest import RobotsApi


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in Prometheus' text format (its labels in any order), None when it is not there."""
    for found in re.finditer(rf"^{re.escape(name)}(?:{{(.*)}})? (\S+)$", text, re.M):
        if dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or "")) == labels:
            return float(found.group(2))
    return None


def test_runs_agents_and_activities_are_scraped(client: TestClient, admin_token: str, robots: RobotsApi) -> None:
    robots.make("fine", [sys.executable, "-c", "import time; time.sleep(0.3)"])
    robots.make("broken", [sys.executable, "-c", "raise SystemExit(3)"])
    for name, state in (("fine", "succeeded"), ("fine", "succeeded"), ("broken", "failed")):
        robots.wait_run(robots.start(name)["id"], state)
    echoed = client.post(
        "/api/v1/activities",
        headers=bearer(admin_token),
        json={"action": "system.echo", "args": {"message": "hi"}},
        params={"wait": 10},  # answered once it finished: a scrape right after counts it as succeeded
    )
    assert echoed.status_code == 201, echoed.text
    assert echoed.json()["activities"][0]["state"] == "succeeded"

    scraped = client.get("/metrics", headers=bearer(admin_token))
    assert scraped.status_code == 200
    text = scraped.text
    assert sample(text, "robofleet_runs", robot="fine", state="succeeded") == 2
    assert sample(text, "robofleet_runs", robot="broken", state="failed") == 1
    assert sample(text, "robofleet_run_duration_seconds_count", robot="fine") == 2
    assert sample(text, "robofleet_run_duration_seconds_bucket", robot="fine", le="+Inf") == 2
    assert sample(text, "robofleet_run_duration_seconds_bucket", robot="fine", le="0.1") is None  # not a bound
    assert sample(text, "robofleet_run_duration_seconds_bucket", robot="fine", le="60") == 2
    total = sample(text, "robofleet_run_duration_seconds_sum", robot="fine")
    assert total is not None and 0.6 <= total < 30  # two runs of 0.3 s and their interpreter's start
    assert sample(text, "robofleet_agents_connected") == 1
    assert sample(text, "robofleet_agent_online", agent="local") == 1
    assert sample(text, "robofleet_activities", state="succeeded") == 1
    assert sample(text, "robofleet_activities", state="queued") == 0
    # Still beside today's HTTP figures.
    assert "robofleet_http_requests_total" in text
