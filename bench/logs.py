"""The log store through the real HTTP API of a real `robofleet serve`, on SQLite and PostgreSQL.

Prints, per store:
- ingest rate (records/s) through POST /api/v1/logs with 8 concurrent senders and batches of 500, and again
  while 100 live tails (SSE) are open;
- query latency (p50 of 20) on the store once it holds --rows records (default 1 million): a full-text search
  for a rare word, a full-text search for a common word, a run-id filter, an exact source, a minimum level, and a
  time window of 10 s in the middle of the store (each: newest 100);
- tail delay: a record posted -> seen by an SSE client of /api/v1/logs/stream (p50/p99 of 200);
- a baseline run side by side: the same batches written with SQLAlchemy ORM `add_all` in this process (no HTTP,
  no full-text index maintenance avoided: same table, same triggers).
Targets on 2 cores: >= 50,000 records/s ingest, text search p50 < 200 ms on 1 million rows, tail delay p99 < 1 s.
Usage: python bench/logs.py [--rows 1000000] [--stores sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Server, median, percentile, postgres_available, print_table, serve

SENDERS = 8
VIEWERS = 100
WATCHED = 100_000  # records of the ingest run with viewers
BATCH = 500
WORDS = ["invoice", "ledger", "portal", "login", "customer", "order", "payment", "export", "report", "mail"]


def batch_body(index: int, rare_every: int = 50_000) -> bytes:
    records = []
    for n in range(BATCH):
        serial = index * BATCH + n
        words = " ".join(random.choice(WORDS) for _ in range(6))
        marker = " zebracorn" if serial % rare_every == 0 else ""
        records.append(
            {
                "message": f"step {serial} {words}{marker}",
                "source": f"robot:bot-{serial % 20}",
                "run_id": f"run-{serial // 1000}",
                "level": "INFO" if serial % 10 else "WARNING",
            }
        )
    return json.dumps({"records": records}).encode()


async def ingest(server: Server, total: int) -> float:
    bodies = [batch_body(i) for i in range(total // BATCH)]
    headers = {**server.headers, "Content-Type": "application/json"}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def sender(http: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with http.post("/api/v1/logs", data=body, headers=headers) as answer:
                assert answer.status == 201, await answer.text()
                await answer.read()

    async with aiohttp.ClientSession(server.url) as http:
        started = time.perf_counter()
        await asyncio.gather(*(sender(http) for _ in range(SENDERS)))
        return len(bodies) * BATCH / (time.perf_counter() - started)


async def ingest_watched(server: Server, total: int, viewers: int = VIEWERS) -> float:
    """The ingest rate while `viewers` live tails are open: most filtered on a source no record has (the server's
    cost of a viewer, without this process's cost of reading), a tenth of them reading everything."""
    headers = {**server.headers, "Accept": "text/event-stream"}
    async with aiohttp.ClientSession(server.url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as http:

        async def view(params: dict[str, str]) -> None:
            async with http.get("/api/v1/logs/stream", params=params) as stream:
                assert stream.status == 200
                async for _ in stream.content.iter_any():
                    pass

        watching = [
            asyncio.create_task(view({} if n % 10 == 0 else {"source": "robot:nobody"})) for n in range(viewers)
        ]
        await asyncio.sleep(1)
        try:
            return await ingest(server, total)
        finally:
            for task in watching:
                task.cancel()
            await asyncio.gather(*watching, return_exceptions=True)


async def query_latency(server: Server, params: dict[str, str], repeat: int = 20) -> float:
    timings = []
    async with aiohttp.ClientSession(server.url, headers=server.headers) as http:
        for _ in range(repeat):
            began = time.perf_counter()
            async with http.get("/api/v1/logs", params={**params, "limit": "100"}) as answer:
                assert answer.status == 200, await answer.text()
                await answer.read()
            timings.append((time.perf_counter() - began) * 1000)
    return median(timings)


async def tail_delay(server: Server, count: int = 200, rate: float = 50) -> tuple[float, float]:
    delays: list[float] = []
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession(server.url, headers=server.headers) as http:

        async def watch() -> None:
            async with http.get(
                "/api/v1/logs/stream", params={"source": "robot:tail"}, timeout=aiohttp.ClientTimeout(total=None)
            ) as stream:
                async for raw in stream.content:
                    line = raw.decode().strip()
                    if line.startswith("data:") and "tail-" in line:
                        key = json.loads(line[5:])["message"]
                        delays.append((time.perf_counter() - sent[key]) * 1000)
                        if len(delays) >= count:
                            return

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.5)
        for n in range(count):
            key = f"tail-{n}"
            sent[key] = time.perf_counter()
            body = {"records": [{"message": key, "source": "robot:tail"}]}
            async with http.post("/api/v1/logs", json=body) as answer:
                assert answer.status == 201
            await asyncio.sleep(1 / rate)
        await asyncio.wait_for(watcher, 30)
    return percentile(delays, 0.5), percentile(delays, 0.99)


def baseline(store: str, batches: int) -> float:
    """SQLAlchemy ORM add_all, one transaction per batch of 500, in this process."""
    import tempfile
    import uuid

    from robofleet.logs.models import LogRecord
    from robofleet.orchestrator import prepare_store
    from robofleet.settings.model import Settings
    from robofleet.store import Store

    workdir = Path(tempfile.mkdtemp(prefix="robofleet-logs-baseline-"))
    url = None
    name = f"robofleet_logs_base_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    if store == "postgresql":
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    settings = Settings(store={"url": url, "data_dir": workdir / "data"})
    db = Store(settings.store)
    prepare_store(db, settings)
    payloads = [json.loads(batch_body(i))["records"] for i in range(batches)]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for records in payloads:
        with db.transaction() as session:
            session.add_all(
                [
                    LogRecord(
                        time=now,
                        level=20,
                        source=r["source"],
                        run_id=r["run_id"],
                        message=r["message"],
                        fields={},
                        truncated=False,
                    )
                    for r in records
                ]
            )
    rate = batches * BATCH / (time.perf_counter() - started)
    db.dispose()
    if store == "postgresql":
        import psycopg

        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--measure", type=int, default=200_000, help="Records in the timed ingest run")
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    random.seed(7)
    rows = []
    for store in args.stores.split(","):
        if store == "postgresql" and not postgres_available():
            print("PostgreSQL at 127.0.0.1:5432 is not reachable: skipping it", file=sys.stderr)
            continue
        with serve(store, {"ROBOFLEET_LOGS__STORE_OWN": "false"}) as server:
            rate = asyncio.run(ingest(server, args.measure))
            middle = datetime.now(UTC)
            watched = asyncio.run(ingest_watched(server, WATCHED))
            if args.rows > args.measure + WATCHED:
                asyncio.run(ingest(server, args.rows - args.measure - WATCHED))
            rare = asyncio.run(query_latency(server, {"q": "zebracorn"}))
            common = asyncio.run(query_latency(server, {"q": "invoice ledger"}))
            by_run = asyncio.run(query_latency(server, {"run_id": "run-417"}))
            by_source = asyncio.run(query_latency(server, {"source": "robot:bot-7"}))
            by_level = asyncio.run(query_latency(server, {"level": "WARNING"}))
            window = {"since": middle.isoformat(), "until": (middle + timedelta(seconds=10)).isoformat()}
            by_time = asyncio.run(query_latency(server, window))
            tail50, tail99 = asyncio.run(tail_delay(server))
            rss = server.rss_mb()
        base = baseline(store, 100)
        rows.append(
            [
                store,
                f"{rate:,.0f}",
                f"{watched:,.0f}",
                f"{base:,.0f}",
                f"{rate / base:.1f}x",
                f"{args.rows:,}",
                f"{rare:.1f}",
                f"{common:.1f}",
                f"{by_run:.1f}",
                f"{by_source:.1f}",
                f"{by_level:.1f}",
                f"{by_time:.1f}",
                f"{tail50:.1f}",
                f"{tail99:.1f}",
                f"{rss:.0f}",
            ]
        )
    print_table(
        f"Log store through the HTTP API ({SENDERS} senders x batches of {BATCH}; queries return the newest 100)",
        [
            "store",
            "ingest rec/s",
            f"with {VIEWERS} viewers",
            "ORM baseline rec/s",
            "vs baseline",
            "rows",
            "text rare p50 ms",
            "text common p50 ms",
            "run-id p50 ms",
            "source p50 ms",
            "level p50 ms",
            "10 s window p50 ms",
            "tail p50 ms",
            "tail p99 ms",
            "RSS MB",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
