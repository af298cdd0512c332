"""What a robot's environment holds: the orchestrator's (or agent's) environment without its ROBOFLEET_ settings,
the run context robofleet sets on purpose, and the robot definition's own env, which wins."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from robofleet.agents.processes import ProcessManager
from tests.conftest import StartAgent, StartServe, wait_until

SENTINEL = "rf_sentinel_not_real"
STORE_WITH_PASSWORD = "postgresql+psycopg://robofleet:db-password-not-real@db.invalid/robofleet"
RUN_CONTEXT = {"ROBOFLEET_URL", "ROBOFLEET_RUN_ID", "ROBOFLEET_ROBOT", "ROBOFLEET_TOKEN", "ROBOFLEET_CONTROL_DIR"}
# Written with os.replace so a reader never sees half of it.
DUMP_ENV = (
    "import json, os, sys; open(sys.argv[1] + '.tmp', 'w').write(json.dumps(dict(os.environ)));"
    " os.replace(sys.argv[1] + '.tmp', sys.argv[1])"
)


def dump_env_argv(target: Path) -> list[str]:
    return [sys.executable, "-c", DUMP_ENV, str(target)]


def robofleet_names(env: dict[str, str]) -> set[str]:
    return {name for name in env if name.upper().startswith("ROBOFLEET_")}


def run_robot(api: httpx.Client, name: str, target: Path, **fields: Any) -> tuple[dict[str, Any], dict[str, str]]:
    made = api.post("/api/v1/robots", json={"name": name, "argv": dump_env_argv(target), **fields})
    assert made.status_code == 201, made.text
    started = api.post(f"/api/v1/robots/{name}/start")
    assert started.status_code == 201, started.text
    run: dict[str, Any] = started.json()
    run = wait_until(
        lambda: (r := api.get(f"/api/v1/runs/{run['id']}").json())["state"] in ("succeeded", "failed") and r,
        20,
        message=f"run {run['id']} to end",
    )
    assert run["state"] == "succeeded", run
    return run, json.loads(target.read_text())


def assert_run_context(env: dict[str, str], run: dict[str, Any], name: str, server_url: str) -> None:
    assert env["ROBOFLEET_RUN_ID"] == str(run["id"]) and env["ROBOFLEET_ROBOT"] == name
    assert env["ROBOFLEET_TOKEN"] and env["ROBOFLEET_TOKEN"] != SENTINEL
    assert env["ROBOFLEET_URL"].rstrip("/") == server_url
    assert Path(env["ROBOFLEET_CONTROL_DIR"]).is_dir()


def test_the_process_manager_drops_its_settings_but_keeps_what_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROBOFLEET_CLIENT__TOKEN", SENTINEL)
    monkeypatch.setenv("robofleet_store__url", STORE_WITH_PASSWORD)  # settings are read whatever their case
    monkeypatch.setenv("ROBOFLEET_ROBOT", "inherited, not this run's")
    monkeypatch.setenv("NOT_A_SETTING", "inherited")
    for name in ("PGPASSWORD", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "aws_session_token", "MYSQL_PWD"):
        monkeypatch.setenv(name, f"{SENTINEL}-{name}")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://erp:{SENTINEL}@db.invalid/erp")
    monkeypatch.setenv("XAUTHORITY", "/run/user/1000/xauth")
    manager = ProcessManager(tmp_path / "state")
    target = tmp_path / "env.json"
    given = {"ROBOFLEET_ROBOT": "given", "ROBOFLEET_OWN": "the definition's", "API_TOKEN": "the robot's own secret"}
    run = manager.start("1", dump_env_argv(target), env=given)
    wait_until(lambda: manager.outcome(run) is not None, 15, message="the run's outcome")
    assert manager.outcome(run)["exit_code"] == 0  # type: ignore[index]
    env = json.loads(target.read_text())
    assert robofleet_names(env) == {"ROBOFLEET_ROBOT", "ROBOFLEET_OWN", "ROBOFLEET_CONTROL_DIR"}
    assert env["ROBOFLEET_ROBOT"] == "given" and env["ROBOFLEET_OWN"] == "the definition's"
    assert env["NOT_A_SETTING"] == "inherited"
    assert SENTINEL not in target.read_text() and "db-password-not-real" not in target.read_text()
    # Secrets set for the orchestrator stay there; a robot gets the secrets of its own definition.
    assert env["API_TOKEN"] == "the robot's own secret" and "PGPASSWORD" not in env
    assert env["XAUTHORITY"] == "/run/user/1000/xauth"


@pytest.mark.slow
def test_a_robot_of_serve_sees_its_run_context_not_the_servers_settings(
    tmp_path: Path, start_serve: StartServe
) -> None:
    serve = start_serve(
        env={"ROBOFLEET_CLIENT__TOKEN": SENTINEL, "NOT_A_SETTING": "inherited", "PGPASSWORD": f"{SENTINEL}-pg"}
    )
    api = serve.api()
    own = {"ROBOFLEET_OWN": "the definition's own", "ROBOT_SETTING": "mine"}
    run, env = run_robot(api, "peeker", tmp_path / "env.json", env=own)
    assert_run_context(env, run, "peeker", serve.url)
    assert robofleet_names(env) == RUN_CONTEXT | {"ROBOFLEET_OWN"}
    assert env["ROBOFLEET_OWN"] == "the definition's own" and env["ROBOT_SETTING"] == "mine"
    assert env["NOT_A_SETTING"] == "inherited"
    assert not any(SENTINEL in value for value in env.values())
    assert httpx.get(env["ROBOFLEET_URL"].rstrip("/") + "/healthz", timeout=5).status_code == 200


@pytest.mark.slow
def test_a_robot_of_a_remote_agent_sees_its_run_context_not_the_agents_settings(
    tmp_path: Path, start_serve: StartServe, start_agent: StartAgent
) -> None:
    serve = start_serve()
    api = serve.api()
    agent_env = {
        **serve.env,
        "ROBOFLEET_CLIENT__TOKEN": SENTINEL,
        "ROBOFLEET_STORE__URL": STORE_WITH_PASSWORD,
        "NOT_A_SETTING": "inherited",
    }
    start_agent(serve, "pc-env", env=agent_env, online=api)
    run, env = run_robot(api, "far-peeker", tmp_path / "env.json", agent="pc-env")
    assert_run_context(env, run, "far-peeker", serve.url)
    assert robofleet_names(env) == RUN_CONTEXT
    assert env["NOT_A_SETTING"] == "inherited"
    assert SENTINEL not in env.values() and STORE_WITH_PASSWORD not in env.values()
