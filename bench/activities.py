"""Activity processor throughput and latency, through the real HTTP API of a real `robofleet serve`.

For SQLite and PostgreSQL it prints:
- sync and async throughput (activities/s) of `system.echo`, submitted in lists of 100 by 4 concurrent
  clients, counted from the first submit until every activity is durably finished;
- p50/p99 latency from submit to done (the `?wait=` answer, which comes only once the outcome is durable) for
  single submits at a steady 200/s;
- the same workload against a naive peer run side by side: one transaction per state change, no group commit
  (the straightforward design), on the same store, in this process, without HTTP.
Targets on 2 cores: >= 1,000 sync/s on SQLite, >= 500 sync/s on PostgreSQL, p99 < 50 ms at 200 submits/s.
Usage: python bench/activities.py [--count 4000] [--seconds 10] [--stores sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import Server, percentile, postgres_available, print_table, serve

LIST_SIZE = 100
CLIENTS = 4


async def throughput(server: Server, mode: str, count: int) -> float:
    per_client = count // CLIENTS

    async def client(http: aiohttp.ClientSession, index: int) -> None:
        for start in range(0, per_client, LIST_SIZE):
            body = [
                {"action": "system.echo", "args": {"message": f"{index}-{start + i}"}, "mode": mode}
                for i in range(min(LIST_SIZE, per_client - start))
            ]
            async with http.post("/api/v1/activities", params={"wait": "120"}, json=body) as answer:
                assert answer.status == 201, await answer.text()
                states = {a["state"] for a in (await answer.json())["activities"]}
                assert states == {"succeeded"}, states

    async with aiohttp.ClientSession(server.url, headers=server.headers) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http, i) for i in range(CLIENTS)))
        return per_client * CLIENTS / (time.perf_counter() - started)


async def latency(server: Server, rate: float, seconds: float, warmup: float = 2.0) -> tuple[float, float, int]:
    """Open-loop single submits at `rate`/s; the first `warmup` seconds (connections opening) are not counted."""
    latencies: list[float] = []
    async with aiohttp.ClientSession(server.url, headers=server.headers) as http:

        async def one(index: int) -> None:
            began = time.perf_counter()
            body = {"action": "system.echo", "args": {"message": str(index)}}
            async with http.post("/api/v1/activities", params={"wait": "30"}, json=body) as answer:
                assert (await answer.json())["activities"][0]["state"] == "succeeded"
            latencies.append((time.perf_counter() - began) * 1000)

        tasks = []
        began = time.perf_counter()
        total = int(rate * (seconds + warmup))
        for index in range(total):
            await asyncio.sleep(max(0.0, began + index / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
    counted = latencies[int(rate * warmup) :]
    return percentile(counted, 0.5), percentile(counted, 0.99), len(counted)


def naive_peer(store: str, count: int) -> float:
    """The straightforward processor: insert, mark running, mark done, one transaction each, in one loop."""
    from sqlalchemy import insert, update

    from robofleet.activities.models import Activity
    from robofleet.orchestrator import prepare_store
    from robofleet.settings.model import Settings
    from robofleet.store import Store
    from robofleet.store.base import utcnow

    workdir = Path(tempfile.mkdtemp(prefix="robofleet-naive-"))
    url = None
    cleanup: Callable[[], None] | None = None
    if store == "postgresql":
        import uuid

        import psycopg

        name = f"robofleet_naive_{uuid.uuid4().hex[:8]}"
        admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

        cleanup = drop

    settings = Settings(store={"url": url, "data_dir": workdir / "data"})
    db = Store(settings.store)
    prepare_store(db, settings)
    started = time.perf_counter()
    for index in range(count):
        with db.transaction() as session:
            row = insert(Activity).values(
                action="system.echo",
                args={"message": str(index)},
                mode="sync",
                state="queued",
                requested_by="bench",
                requester_via="system",
                scopes=[],
                source_ip="",
                created_at=utcnow(),
            )
            new_id = session.execute(row.returning(Activity.id)).scalar_one()
        with db.transaction() as session:
            session.execute(update(Activity).where(Activity.id == new_id).values(state="running", started_at=utcnow()))
        result = {"message": str(index)}
        with db.transaction() as session:
            session.execute(
                update(Activity)
                .where(Activity.id == new_id)
                .values(state="succeeded", result=result, finished_at=utcnow())
            )
    rate = count / (time.perf_counter() - started)
    db.dispose()
    if cleanup is not None:
        cleanup()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--stores", default="sqlite,postgresql")
    args = parser.parse_args()
    rows = []
    for store in args.stores.split(","):
        if store == "postgresql" and not postgres_available():
            print("PostgreSQL at 127.0.0.1:5432 is not reachable: skipping it", file=sys.stderr)
            continue
        with serve(store) as server:
            sync_rate = asyncio.run(throughput(server, "sync", args.count))
            async_rate = asyncio.run(throughput(server, "async", args.count))
            p50, p99, done = asyncio.run(latency(server, args.rate, args.seconds))
            rss = server.rss_mb()
        naive = naive_peer(store, min(args.count, 2000))
        target = 1000 if store == "sqlite" else 500
        rows.append(
            [
                store,
                f"{sync_rate:,.0f}",
                f"{target:,}",
                f"{async_rate:,.0f}",
                f"{naive:,.0f}",
                f"{sync_rate / naive:.1f}x",
                f"{p50:.1f}",
                f"{p99:.1f}",
                done,
                f"{rss:.0f}",
            ]
        )
    print_table(
        f"system.echo through POST /api/v1/activities ({CLIENTS} clients, lists of {LIST_SIZE}; "
        f"latency: single submits at {args.rate:.0f}/s for {args.seconds:.0f} s)",
        ["store", "sync/s", "target", "async/s", "naive peer/s", "sync vs peer", "p50 ms", "p99 ms", "n", "RSS MB"],
        rows,
    )


if __name__ == "__main__":
    main()
