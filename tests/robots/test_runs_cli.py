"""`robofleet runs` against a running serve: runs across robots filtered as the API filters them, each line with its
duration and reason; one run with its timeline; a filter the server cannot read is a message and a non-zero exit."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from tests.conftest import StartServe, wait_until

pytestmark = pytest.mark.slow


def test_the_runs_command_lists_filters_and_shows_runs(start_serve: StartServe) -> None:
    serve = start_serve()
    token = serve.token()
    api = serve.api(token)
    for name, code in (("fine", 0), ("broken", 3)):
        robot = {"name": name, "argv": [sys.executable, "-c", f"import sys; sys.exit({code})"]}
        assert api.post("/api/v1/robots", json=robot).status_code == 201
    runs = [api.post(f"/api/v1/robots/{name}/start").json()["id"] for name in ("fine", "broken")]

    def ended() -> list[dict[str, Any]] | None:
        found = [api.get(f"/api/v1/runs/{run_id}").json() for run_id in runs]
        return found if all(run["ended_at"] for run in found) else None

    wait_until(ended, 15, message="both runs to end")

    def cli(*args: str) -> str:
        done = serve.cli("runs", *args, "--token", token)
        assert done.returncode == 0, done.stderr
        return done.stdout

    table = cli().splitlines()
    assert table[0].split()[:3] == ["ID", "ROBOT", "STATE"] and len(table) == 3
    assert table[1].split()[:3] == [str(runs[1]), "broken", "failed"] and table[1].endswith("exit 3")
    assert table[2].split()[:3] == [str(runs[0]), "fine", "succeeded"]
    assert [line.split()[1] for line in cli("--state", "failed", "--origin", "token").splitlines()[1:]] == ["broken"]
    rows = [json.loads(line) for line in cli("--json", "--state", "failed", "--state", "succeeded").splitlines()]
    assert [row["id"] for row in rows] == runs[::-1] and rows[0]["error"] == "exit 3"

    shown = cli(str(runs[1]))
    facts = {line[:12].strip(): line[12:].strip() for line in shown.split("timeline:")[0].splitlines()}
    assert facts["reason:"] == "exit 3" and facts["exit code:"] == "3 (an error of the robot's own (its exit code))"
    assert facts["state:"] == "failed" and facts["started by:"].endswith("(token)")
    timeline = shown.split("timeline:\n")[1].splitlines()
    assert [line.split()[2] for line in timeline] == ["starting", "running", "failed"]

    refused = serve.cli("runs", "--since", "2026-01-01T08:00:00", "--token", token)
    assert refused.returncode != 0 and "since needs a time zone" in refused.stderr
