"""One shape of a record for every reader: a page of the API, an export, a live event rendered from the rows
just written and a backlog event rendered from the store give the same record the same JSON."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from robofleet.events import EventHub
from robofleet.logs.filters import Filters
from robofleet.logs.ingest import Row
from robofleet.logs.service import LogService
from robofleet.settings.model import Settings
from robofleet.store import Store

WHEN = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
RECORDS = [
    Row(WHEN, 30, "robot:shape", "run-7", "disk nearly full: 97%", {"disk": "C:", "free_mb": 120}, False),
    Row(WHEN, 25, "agent:pc-1", None, "a level with no name …[truncated]", {}, True),
    Row(WHEN, 50, "orchestrator", None, 'quotes " and \\ and\nnew lines', {"nested": {"a": [1, None]}}, False),
]


def events_in(text: str) -> list[dict[str, Any]]:
    found = []
    for event in text.split("\n\n"):
        lines = event.splitlines()
        if lines and lines[0] == "event: log":
            assert lines[1].startswith("id: ") and len(lines) == 3  # the data is one line
            found.append(json.loads(lines[2].removeprefix("data: ")))
    return found


async def test_a_record_looks_the_same_live_from_the_store_in_a_page_and_in_an_export(
    store: Store, settings: Settings
) -> None:
    service = LogService(store, settings.logs, EventHub())
    service.loop = asyncio.get_running_loop()
    try:
        live: list[dict[str, Any]] = []
        ready = asyncio.Event()

        async def watch() -> None:
            async for text in service.tail(Filters(), None, lambda: asyncio.sleep(0, False), 5):
                ready.set()
                live.extend(events_in(text))
                if len(live) == len(RECORDS):
                    return

        watching = asyncio.create_task(asyncio.wait_for(watch(), 10))
        await ready.wait()
        ids = await asyncio.to_thread(lambda: service.write(RECORDS).result())
        await watching

        backlog: list[dict[str, Any]] = []
        async for text in service.tail(Filters(), 0, lambda: asyncio.sleep(0, True), 5):
            backlog.extend(events_in(text))
            if text.startswith("event: ready"):
                break
        page = (await asyncio.to_thread(service.search, Filters(), limit=10, cursor=None, order="asc"))["items"]
        exported = [item for chunk in service.export(Filters(), 10) for item in chunk]
    finally:
        service.stop()

    assert live == backlog == page == exported
    assert live[0] == {
        "id": ids[0],
        "time": "2026-05-04T03:02:01.123456Z",
        "level": "WARNING",
        "source": "robot:shape",
        "run_id": "run-7",
        "message": "disk nearly full: 97%",
        "fields": {"disk": "C:", "free_mb": 120},
        "truncated": False,
    }
    assert [item["level"] for item in live] == ["WARNING", "25", "CRITICAL"]
