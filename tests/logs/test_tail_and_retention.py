"""Live tail (exactly once across a reconnect) and retention, on both stores."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from robofleet.logs.ingest import Row
from robofleet.logs.service import LogService
from robofleet.logs.store_ops import Filters
from robofleet.settings.model import LogsSettings, Settings
from robofleet.store import Store
from robofleet.web.events import EventHub


def rows(count: int, *, start: int = 0, source: str = "robot:tail", when: datetime | None = None) -> list[Row]:
    moment = when or datetime.now(UTC)
    return [Row(moment, 20, source, None, f"line {start + n}", {}, False) for n in range(count)]


async def collect(
    service: LogService, filters: Filters, after: int | None, count: int, seconds: float = 10
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    async def run() -> None:
        async for item in service.tail(filters, after, lambda: asyncio.sleep(0, False), heartbeat=0.2):
            if "message" in item:
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
        deadline = time.monotonic() + 5
        while True:
            found = service.search(Filters(source="orchestrator"), limit=10, cursor=None, order="asc")["items"]
            if len(found) >= 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert found[0]["message"] == "disk almost full on pc-07" and found[0]["level"] == "WARNING"
        assert found[0]["fields"]["logger"] == "robofleet.example"
        assert "ValueError: boom" in found[1]["message"] and found[1]["level"] == "ERROR"
    finally:
        await asyncio.to_thread(service.stop)
