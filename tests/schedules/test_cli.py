"""`robofleet schedule …` against a running serve: create, list, show, preview, fire, pause and resume, as an
operator types them."""

from __future__ import annotations

import json

import pytest

from tests.conftest import StartServe, wait_until
from tests.schedules.conftest import SchedulesApi, counter

pytestmark = pytest.mark.slow


def test_the_schedule_commands_act_on_the_running_engine(start_serve: StartServe) -> None:
    serve = start_serve()
    token = serve.token()
    api = SchedulesApi(serve.api(token))
    api.robot("cli-bot", counter(0.3))

    def cli(*args: str) -> str:
        done = serve.cli("schedule", *args, "--token", token)
        assert done.returncode == 0, done.stderr
        return done.stdout

    made = json.loads(
        cli(
            "create",
            "weekday-morning",
            "--robot",
            "cli-bot",
            "--cron",
            "0 30 7 * * mon-fri",
            "--timezone",
            "Europe/Berlin",
        )
    )
    assert (
        made["trigger"] == {"kind": "cron", "expression": "0 30 7 * * mon-fri"} and made["timezone"] == "Europe/Berlin"
    )
    assert "weekday-morning" in cli("list") and "cron" in cli("list")
    assert json.loads(cli("show", "weekday-morning"))["target"]["args"] == {"name": "cli-bot"}
    fires = cli("preview", "weekday-morning", "--count", "3").split()
    assert len(fires) == 3 and fires == sorted(fires)
    fired = json.loads(cli("fire", "weekday-morning"))
    assert fired["outcome"] == "fired" and fired["activity_id"]
    run = wait_until(lambda: api.runs("cli-bot"), 15)[0]
    assert run["robot"] == "cli-bot"
    assert json.loads(cli("pause", "weekday-morning"))["paused"] is True
    assert "paused" in cli("list")
    assert json.loads(cli("resume", "weekday-morning"))["paused"] is False
    bad = serve.cli("schedule", "create", "x", "--robot", "cli-bot", "--cron", "nope", "--token", token)
    assert bad.returncode == 1 and "422" in bad.stderr and "trigger.expression" in bad.stderr
    both = serve.cli(
        "schedule", "create", "x", "--robot", "cli-bot", "--cron", "* * * * * *", "--every", "5", "--token", token
    )
    assert both.returncode == 2 and "exactly one" in both.stderr
