"""A robot's command line is code: setting or changing its argv, cwd, agent, env or session takes agents:admin
besides robots:write, on a real `robofleet serve`, both stores. robots:write alone (an operator, a role narrowed to
billing-*) changes the rest; and the secrets stored with a command line do not follow it to a new one."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest

from tests.conftest import ServeProcess, StartServe
from tests.robots.conftest import RobotsApi, serve_env, someone

pytestmark = pytest.mark.slow
MASK = "********"
SHOW_SECRET = [sys.executable, "-c", "import os; print('secret is', os.environ.get('DB_PASSWORD'))"]
LEAK = ["sh", "-c", "echo leaked=$DB_PASSWORD"]


@pytest.fixture
def serve(start_serve: StartServe, store_url: str) -> ServeProcess:
    return start_serve(env=serve_env(store_url))


def as_user(serve: ServeProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def refused_for_agents_admin(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 403, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == "forbidden" and error["details"]["permission"] == "agents:admin"
    assert "'agents:admin'" in error["message"] and "robots:write" in error["message"]
    return error


def test_robots_write_alone_changes_a_robot_but_not_what_it_runs(serve: ServeProcess) -> None:
    admin = serve.api()
    billing = as_user(serve, someone(admin, "billing-ops", ["robots:*", "logs:read"], robot_globs=("billing-*",)))
    operator = as_user(serve, serve.token(made_operator(serve)))
    definer = as_user(serve, someone(admin, "definer", ["robots:*", "agents:admin"]))

    # The finding's repro: a robot of its own scope that reads the data dir. Refused, nothing made.
    pwn = {"name": "billing-pwn", "argv": ["sh", "-c", "id; ls -la robofleet-data"], "cwd": "/"}
    refused_for_agents_admin(billing.post("/api/v1/robots", json=pwn))
    refused_for_agents_admin(operator.post("/api/v1/robots", json={**pwn, "name": "op-pwn"}))
    assert admin.get("/api/v1/robots/billing-pwn").status_code == 404
    assert admin.get("/api/v1/robots/op-pwn").status_code == 404

    # agents:admin with robots:write defines robots.
    robot = {"name": "billing-a", "argv": SHOW_SECRET, "env": {"DB_PASSWORD": "hunter2"}}
    made = definer.post("/api/v1/robots", json=robot)
    assert made.status_code == 201, made.text
    shown = billing.get("/api/v1/robots/billing-a").json()

    # Every command-line field is refused to robots:write alone, with the field named; nothing changes.
    changes = (
        {"argv": LEAK},
        {"cwd": "/"},
        {"agent": "elsewhere"},
        {"env": {"DB_PASSWORD": "other"}},
    )  # (a session is refused to everyone until sessions exist: test_robot_form_fields.py)
    for change in changes:
        error = refused_for_agents_admin(billing.patch("/api/v1/robots/billing-a", json=change))
        assert error["details"]["fields"] == list(change)
        refused_for_agents_admin(operator.patch("/api/v1/robots/billing-a", json=change))
    assert admin.get("/api/v1/robots/billing-a").json() == shown

    # The rest is robots:write's, and so is a PATCH that sends back the command line as it was shown.
    rest = {
        "description": "nightly invoices",
        "tags": ["finance"],
        "max_concurrent": 2,
        "safe_stop_timeout": 5,
        "max_runtime": 600,
        "restart": {"policy": "on-failure"},
        "keep_leftovers": True,
    }
    changed = billing.patch("/api/v1/robots/billing-a", json=rest)
    assert changed.status_code == 200, changed.text
    assert {key: changed.json()[key] for key in rest} == {
        **rest,
        "restart": {**shown["restart"], "policy": "on-failure"},
    }
    echoed = {key: shown[key] for key in ("agent", "argv", "cwd", "env", "session")}
    assert operator.patch("/api/v1/robots/billing-a", json={**echoed, "description": "x"}).status_code == 200

    # The command line as stored is what runs: the secret reaches the robot, not another program.
    started = billing.post("/api/v1/robots/billing-a/start")
    assert started.status_code == 201, started.text
    robots = RobotsApi(admin)
    run = robots.wait_run(started.json()["id"], "succeeded", "failed")
    assert robots.wait_output(run, "secret is hunter2") == ["secret is hunter2"]


def made_operator(serve: ServeProcess) -> str:
    made = serve.cli("user", "create", "opal", "--role", "operator", "--password-stdin", stdin="opal-password\n")
    assert made.returncode == 0, made.stderr
    return "opal"


def test_a_new_command_line_asks_for_the_secrets_again(serve: ServeProcess) -> None:
    admin = serve.api()
    robots = RobotsApi(admin)
    robots.make("billing-b", SHOW_SECRET, env={"DB_PASSWORD": "hunter2", "GREETING": "hi"})

    # The finding's repro, by an admin even: the new argv would print the old secret. Sent back masked or left
    # out, the secret is asked for again, by name.
    for change in ({"argv": LEAK}, {"argv": LEAK, "env": {"DB_PASSWORD": MASK, "GREETING": "hi"}}, {"cwd": "/tmp"}):
        refused = admin.patch("/api/v1/robots/billing-b", json=change)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "secret_not_kept" and error["details"]["keys"] == ["DB_PASSWORD"]
        assert "DB_PASSWORD" in error["message"]
    assert admin.get("/api/v1/robots/billing-b").json()["argv"] == SHOW_SECRET

    # Typed again, the secret goes with the new command line; without a move, the mask still keeps it.
    assert admin.patch("/api/v1/robots/billing-b", json={"description": "kept"}).status_code == 200
    again = admin.patch(
        "/api/v1/robots/billing-b", json={"argv": [*SHOW_SECRET, "x"], "env": {"DB_PASSWORD": "typed-again"}}
    )
    assert again.status_code == 200, again.text
    run = robots.start("billing-b")
    robots.wait_run(run["id"], "succeeded")
    assert robots.wait_output(run, "secret is typed-again") == ["secret is typed-again"]
    # Or dropped with the move.
    assert admin.patch("/api/v1/robots/billing-b", json={"argv": LEAK, "env": {}}).status_code == 200
