"""The engine fires real robots on a real `robofleet serve`: an interval, a one-off, a chain A → B, each fire
recorded with its planned and actual time, its activity and its outcome."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from tests.conftest import StartServe, wait_until
from tests.schedules.conftest import SchedulesApi, at, counter, serve_env

pytestmark = pytest.mark.slow


def test_an_interval_of_two_seconds_starts_a_real_robot_each_time(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = SchedulesApi(serve.api())
    api.robot("tick", counter(0.5))
    made = api.schedule(
        "every-2s", {"kind": "interval", "seconds": 2}, {"action": "robots.start", "args": {"name": "tick"}}
    )
    assert made["next_fire_at"] is not None
    fires = api.wait_fires("every-2s", 3, timeout=15)[:3]
    assert [fire["outcome"] for fire in fires] == ["fired"] * 3
    planned = [at(fire["planned_at"]) for fire in fires]
    assert [b - a for a, b in pairwise(planned)] == [timedelta(seconds=2)] * 2
    for fire in fires:
        assert (at(fire["fired_at"]) - at(fire["planned_at"])).total_seconds() < 1.0, fire
        activity = wait_until(
            lambda fire=fire: found if (found := api.activity(fire["activity_id"]))["state"] == "succeeded" else None,
            10,
        )
        assert activity["action"] == "robots.start" and activity["requested_by"] == "schedule:every-2s"
    runs = wait_until(
        lambda: found if len(found := [r for r in api.runs("tick") if r["state"] == "succeeded"]) >= 3 else None, 15
    )
    assert all(run["requested_by"] == "schedule:every-2s" for run in runs)
    shown = api.get("every-2s")
    assert shown["last_fire"]["outcome"] == "fired" and shown["last_fire"]["lateness_seconds"] < 1.0


def test_a_one_off_fires_once_then_never_again(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = SchedulesApi(serve.api())
    api.robot("once-bot", counter(0.3))
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    api.schedule(
        "one-off", {"kind": "once", "at": when.isoformat()}, {"action": "robots.start", "args": {"name": "once-bot"}}
    )
    [fire] = api.wait_fires("one-off", 1, timeout=15)
    assert at(fire["planned_at"]) == when and fire["outcome"] == "fired"
    run = wait_until(lambda: api.runs("once-bot"), 10)[0]
    assert run["requested_by"] == "schedule:one-off"
    assert api.get("one-off")["next_fire_at"] is None
    assert len(api.fires("one-off")) == 1


def test_a_chain_starts_b_when_a_succeeds(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = SchedulesApi(serve.api())
    api.robot("chain-a", counter(0.3))
    api.robot("chain-b", counter(0.3))
    api.schedule(
        "a-then-b",
        {"kind": "run_event", "robot": "chain-a", "on": "succeeded"},
        {"action": "robots.start", "args": {"name": "chain-b"}},
    )
    assert api.get("a-then-b")["next_fire_at"] is None  # fired by run events only
    run_a = serve.api().post("/api/v1/robots/chain-a/start").json()
    run_b = wait_until(lambda: api.runs("chain-b"), 15)[0]
    assert run_b["requested_by"] == "schedule:a-then-b"
    ended_a = wait_until(lambda: found if (found := api.runs("chain-a")[0])["state"] == "succeeded" else None, 10)
    [fire] = api.wait_fires("a-then-b", 1)
    assert at(fire["planned_at"]) == at(ended_a["ended_at"]) and fire["outcome"] == "fired"
    assert ended_a["id"] == run_a["id"]
    b_done = wait_until(lambda: found if (found := api.runs("chain-b")[0])["state"] == "succeeded" else None, 10)
    assert b_done["id"] == run_b["id"] and len(api.runs("chain-b")) == 1  # b's own end starts nothing


def test_a_chain_fires_once_for_a_run_that_ended_while_serve_was_down(store_url: str, start_serve: StartServe) -> None:
    serve = start_serve(env=serve_env(store_url))
    client = serve.api()
    api = SchedulesApi(client)
    api.robot("down-a", counter(1.5))
    api.robot("down-b", counter(0.3))
    api.schedule(
        "down-chain",
        {"kind": "run_event", "robot": "down-a", "on": "succeeded"},
        {"action": "robots.start", "args": {"name": "down-b"}},
    )
    run_a = client.post("/api/v1/robots/down-a/start").json()
    serve.kill()  # kill -9 while a runs: its end comes while no engine runs
    time.sleep(3)
    serve.start(wait="/readyz")
    api = SchedulesApi(serve.api())
    ended = wait_until(lambda: found if (found := api.runs("down-a")[0])["state"] == "succeeded" else None, 20)
    assert ended["id"] == run_a["id"]
    [fire] = api.wait_fires("down-chain", 1, timeout=20)
    assert at(fire["planned_at"]) == at(ended["ended_at"]) and fire["outcome"] == "fired", fire
    runs_b = wait_until(lambda: api.runs("down-b"), 15)
    time.sleep(2)
    assert len(api.runs("down-b")) == 1 and runs_b[0]["requested_by"] == "schedule:down-chain"
    assert len(api.fires("down-chain")) == 1


def test_a_herd_is_read_ahead_yet_each_fires_once_and_never_before_its_time(
    store_url: str, start_serve: StartServe
) -> None:
    """Many one-offs due in the same second wake the engine earlier the more they are (it reads and decides them
    ahead): the fires are still written once their time has come, each once, each with its activity."""
    serve = start_serve(env=serve_env(store_url))
    api = SchedulesApi(serve.api())
    herd = 300
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=herd // 50 + 4)
    echo = {"action": "system.echo", "args": {"message": "herd"}}
    for index in range(herd):
        api.schedule(f"herd-{index:03d}", {"kind": "once", "at": when.isoformat()}, echo)
    assert datetime.now(UTC) < when, "the herd was made too slowly to be due all at once"
    for index in range(herd):
        [fire] = api.wait_fires(f"herd-{index:03d}", 1, timeout=30)
        assert at(fire["planned_at"]) == when and fire["outcome"] == "fired" and fire["activity_id"]
        assert at(fire["fired_at"]) >= when, fire
    assert {api.activity(fire["activity_id"])["state"] for fire in api.fires("herd-000")} <= {
        "queued",
        "running",
        "succeeded",
    }
