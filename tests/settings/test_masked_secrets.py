"""Secrets of the settings file stay masked wherever settings are shown: the API, the settings page, the
`settings.read` action and `robofleet settings show` (robots' env values under secret-looking names, as the robots
API masks them)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from robofleet.robots.masking import masked
from robofleet.settings.masking import masked_env
from tests.conftest import RunCli, StartServe

SECRETS = (
    "hunter2-db-secret",
    "payroll-api-token-secret",
    "ssh-key-secret",
    "cred-secret",
    "pw-secret",
    "proxy-pw-secret",
    "client-pw-secret",
)
CONFIG = """
[server]
public_url = "https://ops:proxy-pw-secret@fleet.example.com:8443/base"

[client]
url = "http://cli:client-pw-secret@127.0.0.1:9/"

[[robots]]
name = "billing-a"
argv = ["true"]
env = { DB_PASSWORD = "hunter2-db-secret", SSH_Key = "ssh-key-secret", REGION = "eu-west-1" }

[[robots]]
name = "hr-payroll"
argv = ["true"]
env = { API_TOKEN = "payroll-api-token-secret", AWS_CREDENTIALS = "cred-secret", passwd = "pw-secret" }
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "robofleet.toml"
    path.write_text(CONFIG)
    return path


def assert_masked(robots: list[dict[str, object]]) -> None:
    envs = {robot["name"]: robot["env"] for robot in robots}
    assert envs == {
        "billing-a": {"DB_PASSWORD": "********", "SSH_Key": "********", "REGION": "eu-west-1"},
        "hr-payroll": {"API_TOKEN": "********", "AWS_CREDENTIALS": "********", "passwd": "********"},
    }


@pytest.mark.slow
def test_the_api_the_page_and_the_action_mask_robot_secrets(config: Path, start_serve: StartServe) -> None:
    serve = start_serve(env={"ROBOFLEET_CONFIG": str(config)})
    api = serve.api()

    shown = api.get("/api/v1/settings")
    assert shown.status_code == 200
    assert not any(secret in shown.text for secret in SECRETS)
    assert_masked(shown.json()["robots"])

    page = api.get("/panel/settings")
    assert page.status_code == 200 and "DB_PASSWORD" in page.text and "REGION" in page.text
    assert not any(secret in page.text for secret in SECRETS)

    done = api.post("/api/v1/activities", params={"wait": 10}, json={"action": "settings.read"})
    assert done.status_code == 201, done.text
    activity = done.json()["activities"][0]
    assert activity["state"] == "succeeded", activity
    assert not any(secret in done.text for secret in SECRETS)
    assert_masked(activity["result"]["robots"])
    # The robots API, which masked them already, still does: one rule for both.
    assert api.get("/api/v1/robots/billing-a").json()["env"]["DB_PASSWORD"] == "********"


def test_settings_show_masks_robot_secrets(config: Path, run_cli: RunCli) -> None:
    shown = run_cli("settings", "show", "--config", str(config))
    assert shown.returncode == 0, shown.stderr
    assert not any(secret in shown.stdout for secret in SECRETS)
    tree = tomllib.loads(shown.stdout)
    assert_masked(tree["robots"])
    assert tree["server"]["public_url"] == "https://ops:***@fleet.example.com:8443/base"
    assert tree["client"]["url"] == "http://cli:***@127.0.0.1:9/"


def test_settings_and_the_robots_api_mask_the_same_names() -> None:  # one rule, until robots imports it
    names = ["DB_PASSWORD", "passwd", "API_TOKEN", "SSH_Key", "AWS_CREDENTIALS", "client_secret", "REGION", "PATH"]
    env = {name: f"value-of-{name}" for name in names}
    assert masked_env(env) == masked(env)
    assert [name for name, value in masked_env(env).items() if value == env[name]] == ["REGION", "PATH"]
