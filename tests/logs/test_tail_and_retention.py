"""Live tail (exactly once across a reconnect) and retention, on both stores."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from robofleet.events import EventHub
from robofleet.logs.filters import Filters
from robofleet.logs.ingest import Row
from robofleet.logs.service import LIVE_BATCHES, LogService
from robofleet.settings.model import LogsSettings, Settings
from robofleet.store import Store
from tests.conftest import wait_until_async


def rows(count: int, *, start: int = 0, source: str = "robot:tail", when: datetime | None = None) -> list[Row]:
    moment = when or datetime.now(UTC)
    return [Row(moment, 20, source, None, f"line {start + n}", {}, False) for n in range(count)]


async def collect(
    service: LogService, filters: Filters, after: int | None, count: int, seconds: float = 10
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def run() -> None:
        async for text in service.tail(filters, after, lambda: asyncio.sleep(0, False), heartbeat=0.2):
            for event in text.split("\n\n"):
                lines = event.splitlines()
                if lines and lines[0] == "event: log":
                    item = json.loads(lines[2].removeprefix("data: "))
                    assert lines[1] == f"id: {item['id']}"
                    got.append(item)
                    if len(got) >= count:
                        return

    await asyncio.wait_for(run(), seconds)
    return got


async def test_tail_resumes_with_every_record_exactly_once(store: Store, settings: Settings) -> None:
    service = LogService(store, settings.logs, EventHub())
    service.loop = asyncio.get_running_loop()
    try:
        service.write(rows(5)).result()
        first = asyncio.create_task(collect(service, Filters(source="robot:*"), after=0, count=12))
        await asyncio.sleep(0.2)
        for batch in range(7):  # written while the viewer is connected
            await asyncio.to_thread(lambda b=batch: service.write(rows(1, start=5 + b)).result())
        received = await first
        assert [r["message"] for r in received] == [f"line {n}" for n in range(12)]
        last_seen = received[-1]["id"]
        # Disconnected: more lines arrive meanwhile; reconnecting after the last id gets each exactly once.
        await asyncio.to_thread(lambda: service.write(rows(4, start=12)).result())
        resumed = asyncio.create_task(collect(service, Filters(), after=last_seen, count=6))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(lambda: service.write(rows(2, start=16)).result())
        again = await resumed
        assert [r["message"] for r in again] == [f"line {n}" for n in range(12, 18)]
        assert len({r["id"] for r in received + again}) == 18
        filtered = asyncio.create_task(collect(service, Filters(source="robot:other"), after=None, count=1))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(lambda: service.write(rows(3, start=100) + rows(1, source="robot:other")).result())
        assert [r["source"] for r in await filtered] == ["robot:other"]
    finally:
        service.stop()


def test_retention_removes_only_what_it_should(store: Store) -> None:
    service = LogService(store, LogsSettings(retention_days=7, max_rows=1000), EventHub())
    try:
        now = datetime.now(UTC)
        service.write(rows(50, source="robot:old", when=now - timedelta(days=8))).result()
        service.write(rows(1100, source="robot:new", when=now - timedelta(days=1))).result()
        outcome = service.housekeeping(now)
        assert outcome == {"expired": 50, "over_max_rows": 100}
        page = service.search(Filters(), limit=1000, cursor=None, order="asc")
        assert {r["source"] for r in page["items"]} == {"robot:new"}
        assert page["items"][0]["message"] == "line 100"  # the 100 oldest of the recent ones went
        assert service.housekeeping(now) == {"expired": 0, "over_max_rows": 0}
    finally:
        service.stop()


async def test_the_orchestrators_own_logs_land_in_the_store(store: Store, settings: Settings) -> None:
    service = LogService(store, settings.logs, EventHub())
    try:
        service.start(asyncio.get_running_loop(), own_logs=True)
        logging.getLogger("robofleet.example").warning("disk almost full on %s", "pc-07")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("robofleet.example").exception("step failed")

        def own_lines() -> list[dict[str, Any]]:
            return service.search(Filters(source="orchestrator"), limit=10, cursor=None, order="asc")["items"]

        found = await wait_until_async(lambda: lines if len(lines := own_lines()) >= 2 else None, 5, message=own_lines)
        assert found[0]["message"] == "disk almost full on pc-07" and found[0]["level"] == "WARNING"
        assert found[0]["fields"]["logger"] == "robofleet.example"
        assert "ValueError: boom" in found[1]["message"] and found[1]["level"] == "ERROR"
    finally:
        await asyncio.to_thread(service.stop)


async def test_a_tail_past_the_newest_id_still_gets_new_records_and_quiet_filters_get_heartbeats(
    store: Store, settings: Settings
) -> None:
    """A client resuming with an id this store never gave (it was reset) gets what is stored from now on; a
    viewer whose filter matches nothing of a busy stream still hears a heartbeat (proxies drop silent ones)."""
    service = LogService(store, settings.logs, EventHub())
    service.loop = asyncio.get_running_loop()
    try:
        service.write(rows(3)).result()
        ahead = asyncio.create_task(collect(service, Filters(), after=2**63 - 1, count=2))
        texts: list[str] = []

        async def quiet() -> None:
            async for text in service.tail(Filters(source="robot:none"), None, lambda: asyncio.sleep(0, False), 0.3):
                texts.append(text)
                if text.startswith(": heartbeat"):
                    return

        listening = asyncio.create_task(asyncio.wait_for(quiet(), 10))
        await asyncio.sleep(0.2)
        for start in range(10):  # records the quiet viewer does not want, faster than its heartbeat
            await asyncio.to_thread(lambda s=start: service.write(rows(1, start=10 + s)).result())
            await asyncio.sleep(0.05)
        assert [r["message"] for r in await ahead] == ["line 10", "line 11"]
        await listening
        assert texts[0].startswith("event: ready") and texts[-1] == ": heartbeat\n\n" and len(texts) == 2
    finally:
        service.stop()


async def test_a_viewer_that_falls_behind_reads_what_it_missed_from_the_store(store: Store, settings: Settings) -> None:
    """More batches than a viewer may have unread: it gets every record all the same, once, in order."""
    service = LogService(store, settings.logs, EventHub())
    service.loop = asyncio.get_running_loop()
    try:
        stream = service.tail(Filters(source="robot:slow"), None, lambda: asyncio.sleep(0, False), heartbeat=30)
        assert (await anext(stream)).startswith("event: ready")
        for batch in range(LIVE_BATCHES * 3):  # while the viewer reads nothing
            written = rows(2, start=batch * 2, source="robot:slow") + rows(1, start=batch, source="robot:other")
            await asyncio.to_thread(lambda w=written: service.write(w).result())
        await asyncio.sleep(0.2)  # the last announcements reach the loop
        got: list[str] = []
        while len(got) < LIVE_BATCHES * 6:
            text = await asyncio.wait_for(anext(stream), 10)
            got += [json.loads(line[6:])["message"] for line in text.splitlines() if line.startswith("data: ")]
        assert got == [f"line {n}" for n in range(LIVE_BATCHES * 6)]
        await stream.aclose()
    finally:
        service.stop()
