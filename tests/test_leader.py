"""One leader per process, shared by every leader duty: each duty's listener hears when the process becomes the
leader (at once when it leads already), and a stop gives the leadership up for another replica to take. And how the
leader tells a replica gone from one whose lock was free for a moment."""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import make_url

from robofleet.runtime.leader import AdvisoryLockLeader, SoleLeader
from robofleet.runtime.replicas import Departures
from tests.conftest import wait_until_async


async def test_on_sqlite_every_duty_leads_from_its_start() -> None:
    leader = SoleLeader()
    heard: list[str] = []
    await leader.start(lambda: heard.append("schedules"))
    await leader.start(lambda: heard.append("recovery"))
    assert heard == ["schedules", "recovery"] and await leader.leads()
    await leader.stop()


async def test_every_duty_hears_when_its_process_leads_and_another_takes_over_after_a_stop(pg_url: str) -> None:
    conninfo = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    first = AdvisoryLockLeader(conninfo, 5, retry_seconds=0.1)
    second = AdvisoryLockLeader(conninfo, 5, retry_seconds=0.1)
    heard: list[str] = []
    try:
        await first.start(lambda: heard.append("first: schedules"))
        await first.start(lambda: heard.append("first: recovery"))
        await wait_until_async(lambda: len(heard) == 2, 10)
        assert sorted(heard) == ["first: recovery", "first: schedules"]
        await second.start(lambda: heard.append("second"))
        await asyncio.sleep(0.3)  # the second tries, and tries again
        await first.start(lambda: heard.append("first: joined late"))  # leads already: told at once
        assert heard[2:] == ["first: joined late"] and await first.leads() and not await second.leads()

        await first.stop()
        await first.stop()  # a second stop does nothing
        await wait_until_async(lambda: second.leading, 10)
        assert heard[3:] == ["second"]
    finally:
        await first.stop()
        await second.stop()


def test_a_replica_is_gone_once_its_lock_stays_free_and_a_moment_free_does_not_count() -> None:
    departures = Departures(settle_seconds=5)
    assert not departures.seen("a", free=True, now=100)  # a database restart freed it: not yet
    assert not departures.seen("a", free=False, now=102)  # held again: it lives
    assert not departures.seen("a", free=True, now=104)  # the count starts again
    assert not departures.seen("a", free=True, now=108)
    assert departures.seen("a", free=True, now=109)
    departures.forget_all_but(["b"])
    assert not departures.seen("a", free=True, now=200)
    assert Departures(settle_seconds=0).seen("a", free=True, now=1)  # SQLite: gone at once
