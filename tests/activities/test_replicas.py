"""Several `serve` replicas on one store: each activity belongs to the replica that stored it. The leader recovers
only the activities of replicas that are gone (their lock is free; rows that name none at once): what they left
running fails as "interrupted", what they left queued it takes over and runs once. A replica's own activities are
never touched while it lives. On SQLite one process owns the file, so a start recovers whatever earlier runs left."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from robofleet.activities import processor
from robofleet.activities.models import FAILED, QUEUED, RUNNING, SUCCEEDED, Activity
from robofleet.orchestrator import Orchestrator
from robofleet.runtime import replicas
from robofleet.runtime.replicas import replica_key
from robofleet.store import Store
from robofleet.store.base import utcnow
from robofleet.web.app import create_app
from tests.activities.conftest import MODULE
from tests.conftest import ServeProcess, StartServe, wait_until

ROOT = Path(__file__).resolve().parents[2]
LIVE, GONE = "a" * 32, "b" * 32
RECOVERY_BOUND = 15  # seconds from a kill -9 to its activities recovered


# ---- in one process: rows of other replicas, stored as they would have left them ----------------------------------


def left_behind(store: Store, replica: str | None, state: str) -> int:
    """A sync system.echo that `replica` left `state`; its id."""
    with store.transaction() as session:
        row = Activity(
            action="system.echo",
            args={"message": f"{replica} {state}"},
            mode="sync",
            state=state,
            requested_by="test",
            requester_via="system",
            started_at=utcnow() if state == RUNNING else None,
            replica=replica,
        )
        session.add(row)
        session.flush()
        return row.id


def stored(store: Store, activity_id: int) -> Activity:
    with store.transaction() as session:
        row = session.get(Activity, activity_id)
        assert row is not None
        return row


def interrupted(store: Store, activity_id: int) -> bool:
    row = stored(store, activity_id)
    return row.state == FAILED and (row.error or {}).get("code") == "interrupted"


def succeeded(store: Store, activity_id: int) -> bool:
    return stored(store, activity_id).state == SUCCEEDED


@pytest.fixture
def quick_recovery(monkeypatch: pytest.MonkeyPatch) -> float:
    """The leader's pass every 0.3 s, a replica gone once its lock is free for 0.6 s; the pass period."""
    monkeypatch.setattr(processor, "RECOVERY_SECONDS", 0.3)
    monkeypatch.setattr(replicas, "GONE_AFTER_SECONDS", 0.6)
    return 0.3


@pytest.fixture
def live_replica(store: Store) -> Iterator[psycopg.Connection]:
    """The session of a replica `LIVE` that lives: it holds its lock until the connection closes."""
    url = make_url(store.settings.effective_url()).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (replica_key(LIVE),))
        yield connection


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_the_leader_leaves_a_live_replicas_activities_alone_until_it_is_gone(
    store: Store, context: Orchestrator, live_replica: psycopg.Connection, quick_recovery: float
) -> None:
    ids = {
        (owner, state): left_behind(store, owner, state) for owner in (LIVE, GONE, None) for state in (RUNNING, QUEUED)
    }
    with TestClient(create_app(context)):
        for owner in (GONE, None):
            wait_until(partial(interrupted, store, ids[owner, RUNNING]), 10)
            wait_until(partial(succeeded, store, ids[owner, QUEUED]), 10)
            assert stored(store, ids[owner, QUEUED]).replica == context.replica  # taken over
        time.sleep(quick_recovery * 5)  # several passes of the leader
        assert stored(store, ids[LIVE, RUNNING]).state == RUNNING
        assert stored(store, ids[LIVE, QUEUED]).state == QUEUED

        live_replica.close()  # the replica dies: its lock goes with its session
        wait_until(partial(interrupted, store, ids[LIVE, RUNNING]), 10)
        wait_until(partial(succeeded, store, ids[LIVE, QUEUED]), 10)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_start_recovers_what_earlier_runs_left_before_anything_new(
    store: Store, context: Orchestrator
) -> None:
    ids = [left_behind(store, owner, state) for owner in (LIVE, None) for state in (RUNNING, QUEUED)]
    with TestClient(create_app(context)):
        assert context.processor is not None
        # Already done or queued when the start returned: nothing submitted later runs before them.
        assert interrupted(store, ids[0]) and interrupted(store, ids[2])
        for queued_id in (ids[1], ids[3]):
            wait_until(partial(succeeded, store, queued_id), 10)
            assert stored(store, queued_id).replica == context.replica


# ---- real `serve` processes on one PostgreSQL database ------------------------------------------------------------


@dataclass
class LeftOn:
    """What a replica was doing when it was killed: a sync and an async sleeper running, a sync append queued."""

    sync_running: int
    async_running: int
    queued: int


def replica_env(pg_url: str) -> dict[str, str]:
    """A `serve` on `pg_url` that can run the test actions (test.append)."""
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(ROOT)]))
    return {"ROBOFLEET_STORE__URL": pg_url, "ROBOFLEET_ACTIVITIES__MODULES": json.dumps([MODULE]), "PYTHONPATH": path}


def leave_work_on(api: httpx.Client, appended: Path) -> LeftOn:
    def submit(body: dict[str, object]) -> int:
        response = api.post("/api/v1/activities", json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["ids"][0])

    sleep: dict[str, object] = {"action": "system.sleep", "args": {"seconds": 60}}
    left = LeftOn(
        sync_running=submit(sleep),
        async_running=submit({**sleep, "mode": "async"}),
        queued=submit({"action": "test.append", "args": {"path": str(appended), "line": "ran"}}),
    )
    wait_until(lambda: states(api, left) == (RUNNING, RUNNING, QUEUED), 10, message=lambda: states(api, left))
    return left


def states(api: httpx.Client, left: LeftOn) -> tuple[str, ...]:
    ids = (left.sync_running, left.async_running, left.queued)
    return tuple(api.get(f"/api/v1/activities/{activity_id}").json()["state"] for activity_id in ids)


def recovered(api: httpx.Client, left: LeftOn) -> bool:
    found = [api.get(f"/api/v1/activities/{i}").json() for i in (left.sync_running, left.async_running, left.queued)]
    return all(a["state"] == FAILED and a["error"]["code"] == "interrupted" for a in found[:2]) and (
        found[2]["state"] == SUCCEEDED
    )


def assert_recovered_once(api: httpx.Client, left: LeftOn, appended: Path, killed_at: float) -> None:
    wait_until(lambda: recovered(api, left), RECOVERY_BOUND, interval=0.2, message=lambda: states(api, left))
    assert time.monotonic() - killed_at < RECOVERY_BOUND
    time.sleep(1)
    assert appended.read_text().splitlines() == ["ran"]  # the queued one ran once, on the replica that took it over


def leads(serve: ServeProcess) -> bool:
    return "this process now leads" in serve.output()


@pytest.mark.slow
def test_a_replica_that_starts_leaves_the_others_activities_alone_and_takes_them_over_once_it_is_killed(
    pg_url: str, start_serve: StartServe, tmp_path: Path
) -> None:
    first = start_serve(env=replica_env(pg_url))
    wait_until(lambda: leads(first), 10)
    appended = tmp_path / "appended.txt"
    left = leave_work_on(first.api(), appended)

    second = start_serve(env=replica_env(pg_url))
    api = second.api()
    time.sleep(processor.RECOVERY_SECONDS + 1)
    assert states(api, left) == (RUNNING, RUNNING, QUEUED)  # a start no longer fails or reruns another's work
    assert not appended.exists()

    first.kill()
    killed_at = time.monotonic()
    assert_recovered_once(api, left, appended, killed_at)
    assert leads(second)


@pytest.mark.slow
def test_the_leader_takes_over_a_killed_replicas_activities_and_none_of_a_live_one(
    pg_url: str, start_serve: StartServe, tmp_path: Path
) -> None:
    leader = start_serve(env=replica_env(pg_url))
    wait_until(lambda: leads(leader), 10)
    worker = start_serve(env=replica_env(pg_url))
    appended = tmp_path / "appended.txt"
    left = leave_work_on(worker.api(), appended)
    api = leader.api()
    time.sleep(processor.RECOVERY_SECONDS * 2 + 1)  # two passes of the leader at least
    assert states(api, left) == (RUNNING, RUNNING, QUEUED)
    assert not leads(worker)

    worker.kill()
    killed_at = time.monotonic()
    assert_recovered_once(api, left, appended, killed_at)
