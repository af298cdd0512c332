"""An agent reports on its own runs only: the end of a run reported by another agent changes nothing, and the
robots service tells the agent hub which agent each run belongs to. Both stores."""

from __future__ import annotations

from fastapi.testclient import TestClient

from robofleet.orchestrator import Orchestrator
from tests.robots.conftest import COUNTER, RobotsApi


def test_an_exit_reported_by_another_agent_is_ignored(
    client: TestClient, context: Orchestrator, robots: RobotsApi
) -> None:
    service = context.robots
    assert service is not None
    robots.make("payroll", COUNTER)
    run = robots.start("payroll")
    assert service.run_agent(str(run["id"])) == "local"
    for unknown in ("999999", "abc", "-1", "99999999999999999999", "\uff11\uff12"):  # full-width digits too
        assert service.run_agent(unknown) is None

    # The finding's repro: pc-evil says the local run failed. The run goes on, still under control.
    client.portal.call(service.run_exited, "pc-evil", str(run["id"]), {"exit_code": 1})
    client.portal.call(service.run_exited, "pc-evil", "99999999999999999999", {"exit_code": 1})
    shown = robots.run(run["id"])
    assert shown["state"] == "running" and shown["exit_code"] is None
    assert all(not change["by"].startswith("agent:pc-evil") for change in shown["transitions"])
    robots.act(run, "kill")
    assert robots.wait_run(run["id"], "killed")["transitions"][-1]["by"] == "agent:local"
