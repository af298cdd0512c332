"""The embedded agent through a PostgreSQL outage under a real `robofleet serve`, a robot writing all along: it
says once that its watch fails and once that it works again, backs off meanwhile, and delivers the output after."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import StartServe, ThrowawayCluster, wait_until
from tests.store_outage import serve_on, throwaway_cluster

pytestmark = pytest.mark.slow
COUNTER = [sys.executable, str(Path(__file__).resolve().parents[2] / "examples" / "robots" / "counter.py")]
OUTAGE_SECONDS = 5


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    with throwaway_cluster() as running:
        yield running


def test_a_store_outage_is_said_once_by_the_local_agent(cluster: ThrowawayCluster, start_serve: StartServe) -> None:
    serve = serve_on(start_serve, cluster).start(wait="/readyz")
    api = serve.api()
    robot = {"name": "chatter", "agent": "local", "argv": [*COUNTER, "--every", "0.05"]}
    assert api.post("/api/v1/robots", json=robot).status_code == 201
    run = api.post("/api/v1/robots/chatter/start").json()
    lines = {"run_id": str(run["id"]), "source": "robot:chatter", "limit": 1}
    wait_until(lambda: api.get("/api/v1/logs", params=lines).json()["items"], 20, 0.1, "its first line")

    cluster.stop("immediate")
    time.sleep(OUTAGE_SECONDS)
    cluster.start()
    cluster.wait_until_answers()
    wait_until(lambda: "watch works again" in serve.output(), 30, 0.2, serve.output)
    assert api.post(f"/api/v1/runs/{run['id']}/kill").status_code == 200

    said = [line for line in serve.output().splitlines() if "local agent" in line or "local-agent-watch" in line]
    assert sum("watch fails" in line for line in said) == 1, said
    assert sum("watch works again" in line for line in said) == 1, said
    assert not [line for line in said if "local-agent-watch" in line], said  # nothing per pass from the loop
    assert "Traceback" not in serve.output()
    # What the robot wrote during the outage waited in its spool file: stored after, in order, with no gap.
    wait_until(lambda: api.get(f"/api/v1/runs/{run['id']}").json()["state"] == "killed", 20, 0.1, "the kill")
    params = {"run_id": str(run["id"]), "source": "robot:chatter", "order": "asc", "limit": 1000}
    counted = [record["message"] for record in api.get("/api/v1/logs", params=params).json()["items"]]
    assert len(counted) > OUTAGE_SECONDS / 0.05 / 2 and counted == [f"count {n}" for n in range(1, len(counted) + 1)]
