"""Robots declared in the settings file, like the demo robots `make serve` starts with."""

from __future__ import annotations

from pathlib import Path

import pytest

from robofleet.agents.hub import AgentHub
from robofleet.auth.principal import cli_principal
from robofleet.errors import ConfigError
from robofleet.robots.service import RobotsService
from robofleet.settings import load_settings
from robofleet.settings.model import RobotConfig
from robofleet.store import Store
from robofleet.web.events import EventHub

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.toml"


def test_declared_robots_are_applied_idempotently(store: Store) -> None:
    service = RobotsService(store, AgentHub(), EventHub(), server_url="http://127.0.0.1:8080")
    declared = load_settings(DEMO, environ={}).robots
    assert [robot.name for robot in declared] == ["demo-counter", "demo-tree"]
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
