"""The command line, run as a user runs it, against the store of ./robofleet-data (SQLite) or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from robofleet.orchestrator import Orchestrator
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.web.app import create_app
from tests.conftest import CliResult, RunCli, bearer

Cli = Callable[..., CliResult]


@pytest.fixture
def cli(run_cli: RunCli) -> Cli:
    """`cli(workdir, *args, stdin=None, env=None)`: `robofleet ARGS` run in `workdir` as its user runs it."""

    def run(workdir: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        return run_cli(*args, cwd=workdir, stdin=stdin, env=env)

    return run


@pytest.fixture
def workdir(tmp_path: Path, store_url: str) -> tuple[Path, dict[str, str]]:
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    return tmp_path, env


def test_user_lifecycle_from_the_cli(workdir: tuple[Path, dict[str, str]], cli: Cli) -> None:
    path, env = workdir
    created = cli(
        path, "user", "create", "mira", "--role", "operator", "--password-stdin", stdin="mira-password\n", env=env
    )
    assert created.returncode == 0, created.stderr
    assert "created user mira" in created.stdout
    if not env:
        assert (path / "robofleet-data" / "robofleet.db").exists()
    listed = cli(path, "user", "list", env=env)
    assert "mira" in listed.stdout and "operator" in listed.stdout
    assert (
        cli(path, "user", "set-password", "mira", "--password-stdin", stdin="new-password\n", env=env).returncode == 0
    )
    disabled = cli(path, "user", "disable", "mira", env=env)
    assert disabled.returncode == 0 and "disabled" in cli(path, "user", "list", env=env).stdout


def test_cli_errors_are_clear_and_non_zero(workdir: tuple[Path, dict[str, str]], cli: Cli) -> None:
    path, env = workdir
    cli(path, "user", "create", "mira", "--password-stdin", stdin="mira-password\n", env=env)
    again = cli(path, "user", "create", "mira", "--password-stdin", stdin="mira-password\n", env=env)
    assert again.returncode == 1 and "exists already" in again.stderr
    short = cli(path, "user", "create", "nina", "--password-stdin", stdin="short\n", env=env)
    assert short.returncode != 0 and "password" in short.stderr
    unknown_role = cli(
        path, "user", "create", "nina", "--role", "pilot", "--password-stdin", stdin="long-enough\n", env=env
    )
    assert unknown_role.returncode == 1 and "pilot" in unknown_role.stderr
    assert cli(path, "user", "disable", "ghost", env=env).returncode == 1
    no_stdin = cli(path, "user", "create", "nina", env=env, stdin="")
    assert no_stdin.returncode != 0 and "--password-stdin" in no_stdin.stderr
    assert cli(path, "token", "create", "--user", "ghost", env=env).returncode == 1
    assert cli(path, "token", "revoke", "nosuch", env=env).returncode == 1


def test_token_create_prints_the_token_alone_on_the_last_line(workdir: tuple[Path, dict[str, str]], cli: Cli) -> None:
    path, env = workdir
    cli(path, "user", "create", "bot", "--role", "viewer", "--password-stdin", stdin="bot-password\n", env=env)
    created = cli(path, "token", "create", "--user", "bot", "--name", "ci", "--expires-in-days", "30", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("rf_") and " " not in token
    url = env.get("ROBOFLEET_STORE__URL") or f"sqlite:///{path / 'robofleet-data' / 'robofleet.db'}"
    settings = Settings(store={"url": url, "data_dir": path / "robofleet-data"})
    store = Store(settings.store)
    with TestClient(create_app(Orchestrator(settings=settings, store=store, ready=True))) as client:
        assert client.get("/api/v1/me", headers=bearer(token)).json()["username"] == "bot"
        token_id = created.stdout.split()[1]
        assert cli(path, "token", "revoke", token_id, env=env).returncode == 0
        time.sleep(0.3)  # another process's change counts within the 0.25 s the auth epoch is trusted
        assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    store.dispose()
    assert token_id in cli(path, "token", "list", env=env).stdout


def test_migrate_and_bad_config(tmp_path: Path, cli: Cli) -> None:
    migrated = cli(tmp_path, "migrate")
    assert migrated.returncode == 0 and "revision" in migrated.stdout
    (tmp_path / "robofleet.toml").write_text('[store]\nurl = "mysql://nope"\n')
    refused = cli(tmp_path, "user", "list")
    assert refused.returncode == 2 and "store.url" in refused.stderr and "line 2" in refused.stderr
