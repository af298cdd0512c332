"""A run's output reaches the log store whole and in order before its end is recorded, and no line read by an agent
is lost when the orchestrator dies before it could store that line. Real `robofleet serve`, real agents, real
stores."""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import ServeProcess, StartAgent, StartServe, wait_until

WAIT = 30  # seconds: these robots print megabytes

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"
COUNTER = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.02"]
LINES, WIDTH = 14_000, 250  # 3.5 MB on stdout, written in well under a second
PRINTER = f"""
import sys
for n in range({LINES}):
    sys.stdout.write(f"{{n:08d}} " + "x" * {WIDTH - 10} + "\\n")
    if n % 1000 == 999:
        sys.stderr.write(f"milestone {{n + 1}}\\n")
sys.stdout.flush()
sys.stderr.write("done")
"""


def records(api: httpx.Client, run_id: int, robot: str) -> list[dict[str, Any]]:
    """The run's output as the log store holds it, oldest first."""
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"run_id": str(run_id), "source": f"robot:{robot}", "order": "asc", "limit": 1000}
    while True:
        page = api.get("/api/v1/logs", params=params).json()
        found += page["items"]
        if not page["next_cursor"]:
            return found
        params["cursor"] = page["next_cursor"]


def env_for(store_url: str) -> dict[str, str]:
    return {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}


def remote_agent(serve: ServeProcess, api: httpx.Client, start_agent: StartAgent, name: str) -> None:
    """A `robofleet agent` named `name` connected to `serve`, its user and token made through `api`."""
    user = {"username": name, "password": "agent-password", "roles": ["agent"]}
    assert api.post("/api/v1/users", json=user).status_code == 201
    token = api.post("/api/v1/tokens", json={"user": name, "agent": name}).json()["token"]
    start_agent(serve, name, token=token, online=api, timeout=WAIT)


def settle_a_chatty_run(
    tmp_path: Path, start_serve: StartServe, start_agent: StartAgent, env: dict[str, str], agent: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Runs PRINTER on `agent` ("local" or a remote one); the settled run and its output as stored the moment it
    was settled."""
    printer = tmp_path / "printer.py"
    printer.write_text(PRINTER)
    serve = start_serve(tmp_path / "server", env=env)
    api = serve.api(timeout=60)
    if agent != "local":
        remote_agent(serve, api, start_agent, agent)
    robot = {"name": "chatty", "agent": agent, "argv": [sys.executable, str(printer)]}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/chatty/start").json()
    settled = wait_until(
        lambda: (r := api.get(f"/api/v1/runs/{run['id']}").json())["state"] not in ("starting", "running") and r,
        WAIT,
        message="the run to be settled",
    )
    return settled, records(api, run["id"], "chatty")  # read at once: nothing may still be on its way


def assert_whole(settled: dict[str, Any], stored: list[dict[str, Any]]) -> None:
    assert settled["state"] == "succeeded" and settled["exit_code"] == 0, settled
    stdout = [r["message"] for r in stored if r["fields"]["stream"] == "stdout"]
    stderr = [r["message"] for r in stored if r["fields"]["stream"] == "stderr"]
    assert [int(line[:8]) for line in stdout] == list(range(LINES)), "lines missing, repeated or out of order"
    assert all(len(line) == WIDTH - 1 for line in stdout)
    assert stderr == [f"milestone {n}" for n in range(1000, LINES + 1, 1000)] + ["done"]


def test_a_local_run_that_ends_with_megabytes_unread_is_settled_only_after_all_its_output_is_stored(
    tmp_path: Path, store_url: str, start_serve: StartServe, start_agent: StartAgent
) -> None:
    assert_whole(*settle_a_chatty_run(tmp_path, start_serve, start_agent, env_for(store_url), "local"))


def test_a_remote_run_that_ends_with_megabytes_unread_is_settled_only_after_all_its_output_is_stored(
    tmp_path: Path, start_serve: StartServe, start_agent: StartAgent
) -> None:
    assert_whole(*settle_a_chatty_run(tmp_path, start_serve, start_agent, {}, "pc-out"))


@contextlib.contextmanager
def writes_blocked(store_url: str, data_dir: Path) -> Iterator[None]:
    """Log records cannot be written while this holds (readers go on): the orchestrator's writes wait for it."""
    if store_url.startswith("sqlite"):
        connection = sqlite3.connect(data_dir / "robofleet.db", isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            connection.execute("ROLLBACK")
            connection.close()
    else:
        with psycopg.connect(store_url.replace("postgresql+psycopg://", "postgresql://")) as pg, pg.transaction():
            pg.execute("LOCK TABLE log_records IN EXCLUSIVE MODE")
            yield


def test_output_read_but_not_stored_when_serve_is_killed_is_read_again_after_its_restart(
    tmp_path: Path, store_url: str, start_serve: StartServe
) -> None:
    serve = start_serve(tmp_path, env=env_for(store_url))
    api = serve.api(timeout=30)
    robot = {"name": "steady", "argv": COUNTER, "safe_stop_timeout": 5}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/steady/start").json()
    wait_until(lambda: len(records(api, run["id"], "steady")) >= 20, WAIT, message="the first lines")
    with writes_blocked(store_url, tmp_path / "robofleet-data"):
        time.sleep(1.5)  # serve reads lines meanwhile; storing them waits for the lock
        serve.kill()
    serve.start(wait="/readyz")
    api = httpx.Client(base_url=serve.url, headers=api.headers, timeout=30)
    before = len(records(api, run["id"], "steady"))
    wait_until(
        lambda: len(records(api, run["id"], "steady")) >= before + 100, WAIT, message="the lines of the lock and more"
    )
    assert api.post(f"/api/v1/runs/{run['id']}/stop").status_code == 200
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "stopped", WAIT, message="the stop")
    numbers = [int(r["message"].removeprefix("count ")) for r in records(api, run["id"], "steady")]
    missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
    assert not missing, f"lines lost: {missing[:5]}… ({len(missing)})"
    assert numbers == list(range(1, len(numbers) + 1)), "lines repeated or out of order"
