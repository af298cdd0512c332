"""Two `robofleet serve` processes on one PostgreSQL database: exactly one (the holder of the advisory lock) fires,
each due fire once; `kill -9` of it and the other takes over within 10 s, firing nothing twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from tests.conftest import StartServe, wait_until
from tests.schedules.conftest import SchedulesApi, at

pytestmark = pytest.mark.slow
ECHO = {"action": "system.echo", "args": {"message": "beat"}}
LEADS = "this process now leads"


def test_two_serves_fire_each_fire_once_and_the_other_takes_over_a_killed_leader(
    pg_url: str, start_serve: StartServe
) -> None:
    env = {"ROBOFLEET_STORE__URL": pg_url}
    first = start_serve(env=env, wait="/readyz")
    second = start_serve(env=env, wait="/readyz")
    leaders = wait_until(lambda: [serve for serve in (first, second) if LEADS in serve.output()], 10)
    assert len(leaders) == 1, (first.output()[-3000:], second.output()[-3000:])
    leader = leaders[0]
    other = second if leader is first else first
    api = SchedulesApi(leader.api())
    # A schedule made through the other replica, while the leader sleeps with nothing planned: the leader hears of
    # it at once (a notice), not at its next safety pass a minute later.
    through_other = SchedulesApi(other.api())
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    through_other.schedule("soon", {"kind": "once", "at": when.isoformat()}, ECHO)
    [soon] = api.wait_fires("soon", 1, timeout=15)
    assert at(soon["planned_at"]) == when and (at(soon["fired_at"]) - when).total_seconds() < 1, soon

    api.schedule("beat", {"kind": "interval", "seconds": 1}, ECHO, misfire={"policy": "run_once", "grace_seconds": 30})
    api.wait_fires("beat", 5, timeout=20)
    assert LEADS not in other.output()
    killed_at = datetime.now(UTC)
    leader.kill()
    api = SchedulesApi(other.api())

    def fired_after_kill() -> list[dict[str, object]] | None:
        found = [fire for fire in api.fires("beat") if at(str(fire["fired_at"])) > killed_at]
        return found or None

    taken = wait_until(fired_after_kill, 12, interval=0.1)
    assert (at(str(taken[0]["fired_at"])) - killed_at).total_seconds() < 10, taken
    assert LEADS in other.output()
    time.sleep(3)
    # Held before the fires and activities are read, so no fire lands between the two reads (a pass that read the
    # schedule before the pause may still write its fire: given a second).
    assert api.api.post("/api/v1/schedules/beat/pause").status_code == 200
    time.sleep(1.5)

    fires = api.fires("beat")
    planned = [at(fire["planned_at"]) for fire in fires]
    assert len(set(planned)) == len(planned) == len(fires)
    assert planned == sorted(planned)
    # Every planned second is covered, once: by its own fire or as one of the missed ones a later fire stood for.
    for before, fire in pairwise(fires):
        gap = at(fire["planned_at"]) - at(before["planned_at"])
        assert gap == timedelta(seconds=1 + fire["missed"]), (before, fire)
    assert all(fire["outcome"] == "fired" and fire["activity_id"] for fire in fires), fires
    page = api.api.get("/api/v1/activities", params={"action": "system.echo", "limit": 500}).json()["items"]
    submitted = sorted(item["id"] for item in page if item["requested_by"] == "schedule:beat")
    assert submitted == sorted(fire["activity_id"] for fire in fires)  # one activity per fire, none twice
