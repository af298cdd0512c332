"""An agent that goes away stays listed, offline since when and why, also after a restart of `serve`; a stop or kill
asked while it is away is kept on the run (pending) and carried out when the agent is back, never half-applied
(issue 15, defect 6). A real `robofleet agent` process, stopped and started again, on both stores."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from playwright.sync_api import Browser

from tests.conftest import StartAgent, StartServe, log_in, wait_until

pytestmark = pytest.mark.slow
COUNTER = [
    sys.executable,
    str(Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py"),
    "--every",
    "0.1",
]


def env_for(store_url: str, **settings: str) -> dict[str, str]:
    return {**({} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}), **settings}


def listed(api: httpx.Client, name: str) -> dict[str, Any] | None:
    return next((agent for agent in api.get("/api/v1/agents").json()["items"] if agent["name"] == name), None)


def offline(api: httpx.Client, name: str) -> dict[str, Any]:
    return wait_until(
        lambda: (agent := listed(api, name)) is not None and not agent["online"] and agent,
        20,
        0.1,
        f"{name} listed offline",
    )


def run_of(api: httpx.Client, run_id: int) -> dict[str, Any]:
    answer: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
    return answer


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_an_offline_agent_stays_listed_also_after_a_restart_of_serve(
    store_url: str, start_serve: StartServe, start_agent: StartAgent, browser: Browser
) -> None:
    serve = start_serve(env=env_for(store_url))
    api = serve.api()
    agent = start_agent(serve, "pc-01", online=api)
    agent.stop()
    gone = offline(api, "pc-01")
    assert gone["state"] == "offline" and gone["offline_since"] and gone["offline_reason"]
    assert gone["host"] and gone["os_user"]  # its machine as it was last seen
    assert api.get("/api/v1/agents/pc-01").json()["online"] is False
    assert (listed(api, "local") or {}).get("online") is True
    # Until its departure is stored (a moment after the link drops), its offline time may be its last sighting.
    time.sleep(1.0)
    gone = listed(api, "pc-01") or gone

    serve.stop()
    serve.start(wait="/readyz")
    api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
    after = listed(api, "pc-01")
    assert after is not None and after["online"] is False and after["offline_since"] == gone["offline_since"]
    page = browser.new_page()
    log_in(page, serve.url, "admin", serve.admin_password(), "/panel/fleet")
    row = page.locator("#agents tr[data-agent='pc-01']")
    assert row.get_attribute("data-online") == "false" and "offline since" in row.inner_text()
    page.click("#agents a:has-text('pc-01')")
    page.wait_for_selector("#agent-offline:has-text('Offline since')")

    agent.start().wait_online(api)
    back = listed(api, "pc-01")
    assert back is not None and back["online"] is True and back["offline_since"] is None


def test_a_stop_asked_while_the_agent_is_away_is_carried_out_when_it_is_back(
    store_url: str, start_serve: StartServe, start_agent: StartAgent
) -> None:
    # A short grace: the run is lost while its agent is away, and must come back stopping, not running.
    serve = start_serve(env=env_for(store_url, ROBOFLEET_AGENTS__GRACE_SECONDS="1"))
    api = serve.api()
    agent = start_agent(serve, "pc-02", online=api)
    api.post("/api/v1/robots", json={"name": "far", "agent": "pc-02", "argv": COUNTER, "safe_stop_timeout": 10})
    run = api.post("/api/v1/robots/far/start").json()
    assert run["state"] == "running"
    agent.kill()  # the agent dies; its robot, in a session of its own, does not
    offline(api, "pc-02")

    stopped = api.post(f"/api/v1/runs/{run['id']}/stop")
    assert stopped.status_code == 200, stopped.text
    # Stopping, or lost already when its grace ran out first: either way the stop is kept, not refused.
    assert stopped.json()["state"] in ("stopping", "lost") and stopped.json()["pending_action"] == "stop"
    lost = wait_until(lambda: (r := run_of(api, run["id"]))["state"] == "lost" and r, 20, 0.1, "the run lost")
    assert lost["pending_action"] == "stop"  # kept while the agent is away
    assert alive(run["pid"])

    agent.start()
    ended = wait_until(
        lambda: (r := run_of(api, run["id"]))["state"] in ("stopped", "running", "killed") and r,
        30,
        0.1,
        lambda: f"the stop to be carried out: {run_of(api, run['id'])}\n{agent.output()}",
    )
    assert ended["state"] == "stopped", ended
    assert ended["pending_action"] is None
    assert [change["state"] for change in ended["transitions"]][-3:] == ["lost", "stopping", "stopped"]
    wait_until(lambda: not alive(run["pid"]), 10, 0.1, "the robot process to end")


def test_a_kill_asked_while_the_agent_is_away_survives_a_restart_of_serve(
    store_url: str, start_serve: StartServe, start_agent: StartAgent
) -> None:
    serve = start_serve(env=env_for(store_url, ROBOFLEET_AGENTS__GRACE_SECONDS="120"))
    api = serve.api()
    agent = start_agent(serve, "pc-03", online=api)
    api.post("/api/v1/robots", json={"name": "stubborn", "agent": "pc-03", "argv": COUNTER})
    run = api.post("/api/v1/robots/stubborn/start").json()
    agent.kill()
    offline(api, "pc-03")
    # A restart's start cannot wait for the agent: refused up front, and nothing of it done (no stop pending).
    refused = api.post("/api/v1/robots/stubborn/restart")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "agent_offline", refused.text
    untouched = run_of(api, run["id"])
    assert untouched["state"] == "running" and untouched["pending_action"] is None

    killed = api.post(f"/api/v1/runs/{run['id']}/kill")
    assert killed.status_code == 200, killed.text
    assert killed.json()["pending_action"] == "kill" and killed.json()["state"] == "running"
    serve.kill()  # the intent is stored, not held in memory
    serve.start(wait="/readyz")
    api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=20)
    assert run_of(api, run["id"])["pending_action"] == "kill"
    assert alive(run["pid"])

    agent.start()
    ended = wait_until(
        lambda: (r := run_of(api, run["id"]))["state"] not in ("running", "stopping") and r,
        30,
        0.1,
        lambda: f"the kill to be carried out: {run_of(api, run['id'])}\n{agent.output()}",
    )
    assert ended["state"] == "killed" and ended["pending_action"] is None, ended
    wait_until(lambda: not alive(run["pid"]), 10, 0.1, "the robot process to end")


def test_a_stop_of_a_lost_run_whose_agent_is_back_is_refused(
    tmp_path: Path, store_url: str, start_serve: StartServe, start_agent: StartAgent
) -> None:
    """A lost run whose agent is connected and does not know it is on no machine: nothing to keep for later."""
    serve = start_serve(env=env_for(store_url, ROBOFLEET_AGENTS__GRACE_SECONDS="1"))
    api = serve.api()
    agent = start_agent(serve, "pc-04", online=api)
    api.post("/api/v1/robots", json={"name": "brief", "agent": "pc-04", "argv": COUNTER})
    run = api.post("/api/v1/robots/brief/start").json()
    agent.kill()
    wait_until(lambda: run_of(api, run["id"])["state"] == "lost", 20, 0.1, "the run lost")
    psutil.Process(run["pid"]).kill()  # not this test's subject: the run is on no machine any more
    start_agent(serve, "pc-04", token=agent.token, state_dir=tmp_path / "afresh", online=api)  # knows no run
    refused = api.post(f"/api/v1/runs/{run['id']}/stop")
    assert refused.status_code == 409, refused.text
    after = run_of(api, run["id"])
    assert after["state"] == "lost" and after["pending_action"] is None
