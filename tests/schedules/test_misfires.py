"""`robofleet serve` stopped while fires fall due, then started again: each schedule's misfire policy decides,
and never one fire per missed slot. `skip`: the late fires are one `skipped_misfire` row; `run_once`: one fire."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import StartServe
from tests.schedules.conftest import SchedulesApi, at, serve_env

pytestmark = pytest.mark.slow
ECHO = {"action": "system.echo", "args": {"message": "tick"}}


@pytest.mark.parametrize("policy", ["skip", "run_once"])
def test_fires_missed_while_serve_was_down_follow_the_misfire_policy(
    store_url: str, start_serve: StartServe, policy: str
) -> None:
    serve = start_serve(env=serve_env(store_url))
    api = SchedulesApi(serve.api())
    api.schedule(
        "each-second", {"kind": "interval", "seconds": 1}, ECHO, misfire={"policy": policy, "grace_seconds": 0.5}
    )
    once_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    api.schedule(
        "one-off", {"kind": "once", "at": once_at.isoformat()}, ECHO, misfire={"policy": policy, "grace_seconds": 1}
    )
    api.wait_fires("each-second", 2, timeout=10)
    before = {fire["id"] for fire in api.fires("each-second")}
    serve.stop()
    time.sleep(6)  # five or six fires of each-second and the one-off fall due meanwhile
    serve.start(wait="/readyz")
    up_at = datetime.now(UTC)
    api = SchedulesApi(serve.api())
    after = api.wait_fires("one-off", 1, timeout=15)
    assert len(after) == 1 and at(after[0]["planned_at"]) == once_at
    if policy == "skip":
        assert after[0]["outcome"] == "skipped_misfire" and after[0]["activity_id"] is None
    else:
        assert after[0]["outcome"] == "fired" and at(after[0]["fired_at"]) >= up_at - timedelta(seconds=1)
        assert api.activity(after[0]["activity_id"])["requested_by"] == "schedule:one-off"
    time.sleep(1.5)
    new = [fire for fire in api.fires("each-second") if fire["id"] not in before]
    first = new[0]  # the pass after the start: every slot missed meanwhile in one row
    assert first["missed"] >= 3, new
    assert first["outcome"] == ("skipped_misfire" if policy == "skip" else "fired"), new
    same_pass = [fire for fire in new if fire["fired_at"] == first["fired_at"]]  # one pass writes one time
    # skip: the late ones skipped as one, at most one more still within the grace fired; run_once: one fire.
    assert len(same_pass) <= (2 if policy == "skip" else 1), new
    assert all(fire["outcome"] == "fired" for fire in new[len(same_pass) :]), new  # then on as planned
