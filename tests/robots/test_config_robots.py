"""Robots declared in the settings file, like the demo robots `make serve` starts with."""

from __future__ import annotations

from pathlib import Path

import pytest

from robofleet.agents.hub import AgentHub
from robofleet.auth.principal import cli_principal
from robofleet.errors import ConfigError
from robofleet.events import EventHub
from robofleet.robots.service import RobotsService
from robofleet.settings import load_settings
from robofleet.settings.model import RobotConfig
from robofleet.store import Store
from tests.conftest import StartServe, wait_until

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "examples" / "demo.toml"


def test_declared_robots_are_applied_idempotently(store: Store) -> None:
    service = RobotsService(store, AgentHub(), EventHub(), server_url="http://127.0.0.1:8080")
    declared = load_settings(DEMO, environ={}).robots
    assert [robot.name for robot in declared] == ["demo-counter", "demo-tree", "demo-stepwise"]
    service.apply_config(declared)
    service.apply_config(declared)
    shown = service.get_robot(cli_principal(), "demo-counter")
    assert shown.from_config and shown.cwd == "examples/robots" and shown.tags == ["demo"]
    changed = [declared[0].model_copy(update={"description": "changed"})]
    service.apply_config(changed)
    assert service.get_robot(cli_principal(), "demo-counter").description == "changed"


def test_a_bad_declared_robot_stops_the_start(store: Store) -> None:
    service = RobotsService(store, AgentHub(), EventHub(), server_url="http://127.0.0.1:8080")
    with pytest.raises(ConfigError, match=r"robots\.bad name"):
        service.apply_config([RobotConfig(name="bad name", argv=["x"])])
    with pytest.raises(ConfigError, match="argv"):
        service.apply_config([RobotConfig(name="empty", argv=[])])


@pytest.mark.slow
def test_the_stepwise_demo_robot_starts_and_pauses_at_its_checkpoint_as_make_serve_declares_it(
    tmp_path: Path, start_serve: StartServe
) -> None:
    # `make serve` runs in the clone's root with --config examples/demo.toml; its relative paths resolve alike here.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    serve = start_serve(tmp_path, env={"ROBOFLEET_CONFIG": "examples/demo.toml"})
    api = serve.api()
    run = api.post("/api/v1/robots/demo-stepwise/start").json()
    assert run["state"] == "running", run
    params = {"run_id": str(run["id"]), "source": "robot:demo-stepwise", "order": "asc"}
    shown = wait_until(  # it runs, checkpoints declared
        lambda: api.get("/api/v1/logs", params=params).json()["items"], interval=0.1, message="its first line"
    )
    assert shown[0]["message"] == "step 1 begins"
    assert api.post(f"/api/v1/runs/{run['id']}/pause").status_code == 200
    paused = wait_until(
        lambda: (r := api.get(f"/api/v1/runs/{run['id']}").json())["state"] == "paused" and r,
        interval=0.1,
        message="the run to be paused",
    )
    assert paused["transitions"][-1]["pause"] == "cooperative"
    assert api.post(f"/api/v1/runs/{run['id']}/stop").status_code == 200
