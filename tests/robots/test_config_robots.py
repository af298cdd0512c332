"""Robots declared in the settings file, like the demo robots `make serve` starts with."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from robofleet.agents.hub import AgentHub
from robofleet.auth.principal import cli_principal
from robofleet.errors import ConfigError
from robofleet.events import EventHub
from robofleet.robots.service import RobotsService
from robofleet.settings import load_settings
from robofleet.settings.model import RobotConfig
from robofleet.store import Store
from tests.conftest import ServeProcess

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


def until(check: Callable[[], Any], seconds: float = 15) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


@pytest.mark.slow
def test_the_stepwise_demo_robot_starts_and_pauses_at_its_checkpoint_as_make_serve_declares_it(
    tmp_path: Path,
) -> None:
    # `make serve` runs in the clone's root with --config examples/demo.toml; its relative paths resolve alike here.
    (tmp_path / "examples").symlink_to(REPO / "examples")
    serve = ServeProcess(tmp_path, env={"ROBOFLEET_CONFIG": "examples/demo.toml"}).start(wait="/readyz")
    try:
        api = httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {serve.token()}"}, timeout=20)
        run = api.post("/api/v1/robots/demo-stepwise/start").json()
        assert run["state"] == "running", run
        params = {"run_id": str(run["id"]), "source": "robot:demo-stepwise", "order": "asc"}
        shown = until(lambda: api.get("/api/v1/logs", params=params).json()["items"])  # it runs, checkpoints declared
        assert shown[0]["message"] == "step 1 begins"
        assert api.post(f"/api/v1/runs/{run['id']}/pause").status_code == 200
        paused = until(lambda: (r := api.get(f"/api/v1/runs/{run['id']}").json())["state"] == "paused" and r)
        assert paused["transitions"][-1]["pause"] == "cooperative"
        assert api.post(f"/api/v1/runs/{run['id']}/stop").status_code == 200
    finally:
        serve.stop()
