"""Work queues: robofleet's against procrastinate and pgqueuer and a bare SQL loop, side by side on one PostgreSQL.

In one run, each system in turn (never two at once) on a fresh database of the local PostgreSQL (127.0.0.1:5432):
- enqueue N items (default 100,000) from one client in batches of 1,000 (`enqueue/s`), then VACUUM ANALYZE, as
  autovacuum would (this machine's PostgreSQL runs without it; again after the drain);
- 8 concurrent consumers drain them, acknowledging each item (`dequeue+ack/s`: N over the time from the consumers'
  start until the last acknowledgement; every item checked done exactly once);
- enqueue→start latency at a steady 100 items/s (one item per enqueue): from just before the enqueue call to the
  moment a consumer holds the item (p50/p99 over `--latency-seconds`, consumers waiting as each system lets them).

The systems:
- robofleet in-process: the service API in this process (an `Orchestrator`, as `serve` builds it). One at a time:
  8 threads, each `leases.claim` then `leases.complete`. Batches: `leases.claim_many(B)` then
  `leases.complete_many` of the B. Latency: 8 asyncio consumers long-polling `leases.next_many(wait=)`.
- robofleet over HTTP: a real `robofleet serve`, 8 httpx clients (threads). One per request: `items/next`, then
  `items/{id}/complete?next=1` (each answer brings the next item). Batches: `items/next?count=B`, then
  `items/complete?next=B` (B completions, and the next B leased, in one request). Latency: 8 clients long-polling
  `items/next?wait=`.
- procrastinate 3.10 (its documented setup: `App(connector=PsycopgConnector(...))`, `apply_schema_async`, an async
  task, `batch_defer_async`; 8 workers (`run_worker_async`) of concurrency 1 on one event loop: a worker fetches
  one job at a time whatever its concurrency, and one worker of concurrency 8 drained at about 0.6x the rate here;
  jobs kept, as its default `delete_jobs="never"`).
- pgqueuer 1.6 (its documented setup: asyncpg, `Queries.install()`, `Queries.enqueue` of lists, 8 `QueueManager`s
  each on its own connection with an entrypoint, their default batch_size=10 and buffered acknowledgements).
- the ceiling: a bare `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING` claim and an
  `UPDATE … SET state = 'done'` ack per item over psycopg, 8 threads each on its own autocommit connection (and the
  same with LIMIT B and `id = ANY(…)`). No latency: a bare loop has no way to wait for an item.
- robofleet on SQLite: in-process (both ways) and over HTTP (batches).

Targets on 2 cores: in-process dequeue+ack >= 1.0x pgqueuer, >= 5x procrastinate, >= 0.5x the bare SQL ceiling;
over HTTP >= 2,000 items/s; enqueue→start p99 <= 20 ms.
Usage: python bench/queues.py [--items 100000] [--quick] [--batch 10] [--latency-seconds 10] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import PG_ADMIN, Server, percentile, postgres_available, print_table, serve

CONSUMERS = 8
ENQUEUE_BATCH = 1000
RATE = 100.0  # items/s of the latency run
QUEUE = "bench"
LEASE_SECONDS = 3600.0  # no lease runs out during a run: nothing comes back, so an empty claim means drained


@dataclass
class Result:
    name: str
    store: str = "postgresql"
    items: int = 0
    enqueue: float = float("nan")  # items/s
    drain: float = float("nan")  # items/s
    latencies: list[float] = field(default_factory=list)  # seconds
    notes: list[str] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.5) * 1000

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99) * 1000


class Drain:
    """What the consumers of a drain acknowledged, and when the last acknowledgement came."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: list[int] = []
        self.last = 0.0

    def acked(self, keys: list[int]) -> None:
        now = time.perf_counter()
        with self.lock:
            self.done.extend(keys)
            self.last = max(self.last, now)

    def rate(self, began: float, expected: int, result: Result) -> None:
        """Checks every item was done exactly once; sets the result's dequeue+ack rate."""
        if len(self.done) != expected or len(set(self.done)) != expected:
            doubled = len(self.done) - len(set(self.done))
            result.notes.append(f"{result.name}: {len(set(self.done)):,} of {expected:,} done, {doubled:,} doubled")
        result.drain = len(set(self.done)) / (self.last - began) if self.last > began else float("nan")


def progress(text: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {text}", file=sys.stderr, flush=True)


@contextmanager
def database(prefix: str) -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards; yields its libpq conninfo."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def analyze(conninfo: str) -> None:
    """VACUUM ANALYZE the database after its items were enqueued and again after they were drained, as autovacuum
    would on a server that runs it (this machine's PostgreSQL runs without: a planner that believes a table of
    100,000 jobs empty, or still full once they are done, picks plans that scan them all; procrastinate's fetch for
    one)."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def database_of(server: Server) -> str:
    """The conninfo of the database a `robofleet serve` uses (found by its connections' ports)."""
    import psutil

    ports = [c.laddr.port for c in psutil.Process(server.process.pid).net_connections("tcp") if c.raddr]
    with psycopg.connect(PG_ADMIN) as connection:
        row = connection.execute(
            "SELECT datname FROM pg_stat_activity WHERE client_port = ANY(%s) AND datname IS NOT NULL", [ports]
        ).fetchone()
    assert row is not None, "no connection of serve's found"
    return f"host=127.0.0.1 port=5432 user=postgres dbname={row[0]}"


def in_threads(count: int, work: Callable[[int], None]) -> None:
    """Run `work(index)` in `count` threads; the first failure is raised."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        for future in [pool.submit(work, index) for index in range(count)]:
            future.result()


async def steady(total: int, enqueue: Callable[[int, float], Any]) -> None:
    """Call `await enqueue(k, t)` for k in range(total) at RATE per second, t the wall time just before the call."""
    began = time.perf_counter()
    for k in range(total):
        await asyncio.sleep(max(0.0, began + k / RATE - time.perf_counter()))
        await enqueue(k, time.time())


async def settled(count: Callable[[], int], total: int, patience: float = 10.0) -> None:
    """Until `count()` reaches `total`, at most `patience` seconds (looked at every 50 ms: the counters are plain
    lists the consumers append to)."""
    deadline = time.monotonic() + patience
    while count() < total and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


# ---- robofleet in-process -----------------------------------------------------------------------------------------


def robofleet_in_process(store: str, items: int, batch: int, seconds: float) -> Result:
    """The service API in this process; `batch` 1: claim/complete, else claim_many/complete_many."""
    how = "one at a time" if batch == 1 else f"batches of {batch}"
    result = Result(f"robofleet in-process, {how}", store, items)
    with tempfile.TemporaryDirectory(prefix="robofleet-bench-queues-") as workdir:
        if store == "postgresql":
            with database("robofleet_bench") as conninfo:
                dbname = conninfo.rsplit("=", 1)[1]
                url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}"
                asyncio.run(_in_process(url, Path(workdir), items, batch, seconds, result, conninfo))
        else:
            url = f"sqlite:///{Path(workdir) / 'data' / 'robofleet.db'}"
            asyncio.run(_in_process(url, Path(workdir), items, batch, seconds, result, None))
    return result


async def _in_process(
    url: str, workdir: Path, items: int, batch: int, seconds: float, result: Result, conninfo: str | None
) -> None:
    from robofleet.auth.principal import system_principal
    from robofleet.orchestrator import Orchestrator, prepare_store
    from robofleet.queues.schemas import Completion, NewItem, QueueCreate
    from robofleet.queues.service import QueuesService
    from robofleet.settings.model import Settings
    from robofleet.store import Store

    settings = Settings(store={"url": url, "data_dir": workdir / "data"}, logs={"level": "WARNING"})
    store = Store(settings.store)
    prepare_store(store, settings)
    orchestrator = Orchestrator(settings=settings, store=store, ready=True)
    await orchestrator.start()
    try:
        service = orchestrator.service("queues")
        assert isinstance(service, QueuesService)
        leases = service.leases
        principal = system_principal("bench")
        service.create_queue(principal, QueueCreate(name=QUEUE, lease_seconds=LEASE_SECONDS))

        began = time.perf_counter()
        for start in range(0, items, ENQUEUE_BATCH):
            chunk = [NewItem(payload={"i": i}) for i in range(start, min(items, start + ENQUEUE_BATCH))]
            await asyncio.to_thread(service.add_items, principal, QUEUE, chunk)
        result.enqueue = items / (time.perf_counter() - began)
        if conninfo is not None:
            analyze(conninfo)

        drain = Drain()

        def consume(_: int) -> None:
            while True:
                if batch == 1:
                    item = leases.claim(principal, QUEUE)
                    if item is None:
                        return
                    leases.complete(principal, QUEUE, item.id, item.lease_id, None)
                    drain.acked([item.id])
                else:
                    got = leases.claim_many(principal, QUEUE, batch)
                    if not got:
                        return
                    done = leases.complete_many(
                        principal, QUEUE, [Completion(id=it.id, lease_id=it.lease_id) for it in got]
                    )
                    drain.acked(done.completed)

        began = time.perf_counter()
        await asyncio.to_thread(in_threads, CONSUMERS, consume)
        drain.rate(began, items, result)
        if conninfo is not None:
            analyze(conninfo)

        stop = asyncio.Event()
        seen: list[float] = []

        async def wait_and_ack() -> None:
            while not stop.is_set():
                got = await leases.next_many(principal, QUEUE, batch, wait=0.5)
                now = time.time()
                seen.extend(now - it.payload["t"] for it in got)
                if got:
                    reports = [Completion(id=it.id, lease_id=it.lease_id) for it in got]
                    await asyncio.to_thread(leases.complete_many, principal, QUEUE, reports)

        async def enqueue(k: int, at: float) -> None:
            await asyncio.to_thread(service.add_items, principal, QUEUE, [NewItem(payload={"t": at, "k": k})])

        consumers = [asyncio.create_task(wait_and_ack()) for _ in range(CONSUMERS)]
        await asyncio.sleep(0.5)
        total = int(RATE * seconds)
        await steady(total, enqueue)
        await settled(lambda: len(seen), total)
        stop.set()
        await asyncio.gather(*consumers)
        result.latencies = seen
    finally:
        await orchestrator.stop()
        store.dispose()


# ---- robofleet over HTTP ------------------------------------------------------------------------------------------


def robofleet_http(store: str, items: int, batch: int, seconds: float) -> Result:
    how = "one item per request" if batch == 1 else f"batches of {batch}"
    result = Result(f"robofleet HTTP, {how}", store, items)
    with serve(store) as server:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as api:
            made = api.post("/api/v1/queues", json={"name": QUEUE, "lease_seconds": LEASE_SECONDS})
            assert made.status_code == 201, made.text
            began = time.perf_counter()
            for start in range(0, items, ENQUEUE_BATCH):
                body = {"items": [{"payload": {"i": i}} for i in range(start, min(items, start + ENQUEUE_BATCH))]}
                added = api.post(f"/api/v1/queues/{QUEUE}/items", json=body)
                assert added.status_code == 201, added.text
            result.enqueue = items / (time.perf_counter() - began)
        if store == "postgresql":
            analyze(database_of(server))

        items_path = f"/api/v1/queues/{QUEUE}/items"
        drain = Drain()

        def consume(_: int) -> None:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
                if batch == 1:
                    answer = client.post(f"{items_path}/next")
                    held = [] if answer.status_code == 204 else [answer.json()]
                    while held:
                        item = held[0]
                        answer = client.post(
                            f"{items_path}/{item['id']}/complete",
                            params={"next": 1},
                            json={"lease_id": item["lease_id"]},
                        )
                        assert answer.status_code == 200, answer.text
                        drain.acked([item["id"]])
                        held = answer.json()["items"]
                    return
                answer = client.post(f"{items_path}/next", params={"count": batch})
                held = [] if answer.status_code == 204 else answer.json()["items"]
                while held:
                    reports = [{"id": it["id"], "lease_id": it["lease_id"]} for it in held]
                    answer = client.post(f"{items_path}/complete", params={"next": batch}, json={"items": reports})
                    assert answer.status_code == 200, answer.text
                    body = answer.json()
                    drain.acked(body["completed"])
                    held = body["items"]

        began = time.perf_counter()
        in_threads(CONSUMERS, consume)
        drain.rate(began, items, result)
        if store == "postgresql":
            analyze(database_of(server))
        result.latencies = http_latency(server.url, server.headers, batch, seconds)
    return result


def http_latency(url: str, headers: dict[str, str], batch: int, seconds: float) -> list[float]:
    items_path = f"/api/v1/queues/{QUEUE}/items"
    stop = threading.Event()
    seen: list[float] = []

    def wait_and_ack(_: int) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            while not stop.is_set():
                answer = client.post(f"{items_path}/next", params={"count": batch, "wait": 0.5})
                if answer.status_code == 204:
                    continue
                got = answer.json()["items"]
                now = time.time()
                seen.extend(now - it["payload"]["t"] for it in got)
                reports = [{"id": it["id"], "lease_id": it["lease_id"]} for it in got]
                assert client.post(f"{items_path}/complete", json={"items": reports}).status_code == 200

    async def produce() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:

            async def enqueue(k: int, at: float) -> None:
                answer = await client.post(items_path, json={"items": [{"payload": {"t": at, "k": k}}]})
                assert answer.status_code == 201, answer.text

            total = int(RATE * seconds)
            await steady(total, enqueue)
            await settled(lambda: len(seen), total)

    with ThreadPoolExecutor(max_workers=CONSUMERS) as pool:
        consumers = [pool.submit(wait_and_ack, index) for index in range(CONSUMERS)]
        time.sleep(0.5)
        try:
            asyncio.run(produce())
        finally:
            stop.set()
        for consumer in consumers:
            consumer.result()
    return seen


# ---- procrastinate ------------------------------------------------------------------------------------------------


def procrastinate_run(items: int, seconds: float) -> Result:
    result = Result("procrastinate 3.10", "postgresql", items)
    with database("procrastinate_bench") as conninfo:
        asyncio.run(_procrastinate(conninfo, items, seconds, result))
    return result


async def _procrastinate(conninfo: str, items: int, seconds: float, result: Result) -> None:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    drain = Drain()
    seen: list[float] = []

    @app.task(name="bench", queue=QUEUE)
    async def handle(i: int, t: float = 0.0) -> None:
        if t:
            seen.append(time.time() - t)
        else:
            drain.acked([i])

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        began = time.perf_counter()
        for start in range(0, items, ENQUEUE_BATCH):
            jobs: list[dict[str, Any]] = [{"i": i} for i in range(start, min(items, start + ENQUEUE_BATCH))]
            await handle.batch_defer_async(*jobs)
        result.enqueue = items / (time.perf_counter() - began)
        await asyncio.to_thread(analyze, conninfo)

        def workers(wait: bool) -> list[Awaitable[None]]:
            return [
                app.run_worker_async(
                    queues=[QUEUE], concurrency=1, wait=wait, install_signal_handlers=False, name=f"bench-{n}"
                )
                for n in range(CONSUMERS)
            ]

        began = time.perf_counter()
        await asyncio.gather(*workers(wait=False))
        # A job is acknowledged (its status stored) after the task returned; a worker returns once all of its are.
        drain.last = time.perf_counter()
        drain.rate(began, items, result)
        await asyncio.to_thread(analyze, conninfo)

        waiting = [asyncio.ensure_future(worker) for worker in workers(wait=True)]
        await asyncio.sleep(1.0)
        total = int(RATE * seconds)

        async def enqueue(k: int, at: float) -> None:
            await handle.defer_async(i=k, t=at)

        await steady(total, enqueue)
        await settled(lambda: len(seen), total)
        for worker in waiting:
            worker.cancel()
        for worker in waiting:
            with suppress(asyncio.CancelledError):
                await worker
        result.latencies = seen


# ---- pgqueuer -----------------------------------------------------------------------------------------------------


def pgqueuer_run(items: int, seconds: float) -> Result:
    result = Result("pgqueuer 1.6", "postgresql", items)
    with database("pgqueuer_bench") as conninfo:
        dsn = "postgresql://postgres@127.0.0.1:5432/" + conninfo.rsplit("=", 1)[1]
        asyncio.run(_pgqueuer(dsn, conninfo, items, seconds, result))
    return result


async def _pgqueuer(dsn: str, conninfo: str, items: int, seconds: float, result: Result) -> None:
    import asyncpg  # type: ignore[import-untyped]
    from pgqueuer import AsyncpgDriver, Job, QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    setup = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(setup))
    await queries.install()
    drain = Drain()
    seen: list[float] = []

    async def managers(mode: QueueExecutionMode) -> list[tuple[QueueManager, Any]]:
        made = []
        for _ in range(CONSUMERS):
            connection = await asyncpg.connect(dsn)
            manager = QueueManager(Queries(AsyncpgDriver(connection)))

            @manager.entrypoint(QUEUE)
            async def handle(job: Job) -> None:
                body = json.loads(job.payload or b"{}")
                if "t" in body:
                    seen.append(time.time() - body["t"])
                else:
                    drain.acked([body["i"]])

            made.append((manager, connection))
        return made

    began = time.perf_counter()
    for start in range(0, items, ENQUEUE_BATCH):
        count = min(items, start + ENQUEUE_BATCH) - start
        payloads: list[bytes | None] = [json.dumps({"i": start + n}).encode() for n in range(count)]
        await queries.enqueue([QUEUE] * count, payloads, [0] * count)
    result.enqueue = items / (time.perf_counter() - began)
    await asyncio.to_thread(analyze, conninfo)

    draining = await managers(QueueExecutionMode.drain)
    began = time.perf_counter()
    await asyncio.gather(*(manager.run(mode=QueueExecutionMode.drain) for manager, _ in draining))
    # Acknowledgements are buffered: a manager's run returns once its buffer is flushed.
    drain.last = time.perf_counter()
    drain.rate(began, items, result)
    for _, connection in draining:
        await connection.close()
    await asyncio.to_thread(analyze, conninfo)

    waiting = await managers(QueueExecutionMode.continuous)
    runs = [asyncio.create_task(manager.run()) for manager, _ in waiting]
    await asyncio.sleep(1.0)
    total = int(RATE * seconds)

    async def enqueue(k: int, at: float) -> None:
        await queries.enqueue(QUEUE, json.dumps({"t": at, "k": k}).encode())

    await steady(total, enqueue)
    await settled(lambda: len(seen), total)
    for manager, _ in waiting:
        manager.shutdown.set()
    await asyncio.gather(*runs)
    for _, connection in waiting:
        await connection.close()
    await setup.close()
    result.latencies = seen


# ---- the bare SQL ceiling -----------------------------------------------------------------------------------------

_TABLE = """
CREATE TABLE bench_items (
    id bigserial PRIMARY KEY,
    payload jsonb NOT NULL,
    state text NOT NULL DEFAULT 'new',
    started_at timestamptz,
    finished_at timestamptz
);
CREATE INDEX bench_items_waiting ON bench_items (id) WHERE state = 'new';
"""
_CLAIM = (
    "UPDATE bench_items SET state = 'running', started_at = now() WHERE id = ("
    "SELECT id FROM bench_items WHERE state = 'new' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, payload"
)
_ACK = "UPDATE bench_items SET state = 'done', finished_at = now() WHERE id = %s AND state = 'running'"
_CLAIM_MANY = (
    "UPDATE bench_items SET state = 'running', started_at = now() WHERE id = ANY(ARRAY("
    "SELECT id FROM bench_items WHERE state = 'new' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)) "
    "RETURNING id, payload"
)
_ACK_MANY = "UPDATE bench_items SET state = 'done', finished_at = now() WHERE id = ANY(%s) AND state = 'running'"


def bare_sql(items: int, batch: int) -> Result:
    how = "one at a time" if batch == 1 else f"batches of {batch}"
    result = Result(f"bare SQL ceiling, {how}", "postgresql", items)
    with database("bare_bench") as conninfo:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(_TABLE)
            began = time.perf_counter()
            for start in range(0, items, ENQUEUE_BATCH):
                payloads = [json.dumps({"i": i}) for i in range(start, min(items, start + ENQUEUE_BATCH))]
                connection.execute("INSERT INTO bench_items (payload) SELECT unnest(%s::jsonb[])", [payloads])
            result.enqueue = items / (time.perf_counter() - began)
        analyze(conninfo)
        drain = Drain()

        def consume(_: int) -> None:
            with psycopg.connect(conninfo, autocommit=True) as connection:
                while True:
                    if batch == 1:
                        row = connection.execute(_CLAIM).fetchone()
                        if row is None:
                            return
                        connection.execute(_ACK, [row[0]])
                        drain.acked([row[1]["i"]])
                    else:
                        rows = connection.execute(_CLAIM_MANY, [batch]).fetchall()
                        if not rows:
                            return
                        connection.execute(_ACK_MANY, [[row[0] for row in rows]])
                        drain.acked([row[1]["i"] for row in rows])

        began = time.perf_counter()
        in_threads(CONSUMERS, consume)
        drain.rate(began, items, result)
    return result


# ---- the table ----------------------------------------------------------------------------------------------------


def ratio(ours: float, theirs: float) -> str:
    if not theirs or theirs != theirs or ours != ours:
        return "-"
    return f"{ours / theirs:.2f}x"


def number(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"


def report(results: list[Result], items: int, batch: int, seconds: float) -> None:
    by_name = {(r.name, r.store): r for r in results}
    nan = Result("-")
    pgq = by_name.get(("pgqueuer 1.6", "postgresql"), nan)
    proc = by_name.get(("procrastinate 3.10", "postgresql"), nan)
    ceiling = by_name.get(("bare SQL ceiling, one at a time", "postgresql"), nan)
    ceiling_batch = by_name.get((f"bare SQL ceiling, batches of {batch}", "postgresql"), nan)
    rows: list[list[object]] = []
    for r in results:
        rows.append(
            [
                r.name,
                r.store,
                number(r.enqueue),
                number(r.drain),
                number(r.p50, 1),
                number(r.p99, 1),
                ratio(r.drain, pgq.drain),
                ratio(r.drain, proc.drain),
                ratio(r.drain, ceiling.drain),
                ratio(r.drain, ceiling_batch.drain),
                ratio(r.enqueue, pgq.enqueue),
                ratio(r.enqueue, proc.enqueue),
                ratio(r.p99, pgq.p99),
                ratio(r.p99, proc.p99),
            ]
        )
    print_table(
        f"{items:,} items each, {CONSUMERS} consumers acknowledging each item; enqueue in batches of "
        f"{ENQUEUE_BATCH:,} from one client; latency: enqueue→start at {RATE:g} items/s for {seconds:g} s. "
        f"Ratios: this row's figure over the peer's (for p99, lower is better)",
        [
            "system",
            "store",
            "enqueue/s",
            "dequeue+ack/s",
            "p50 ms",
            "p99 ms",
            "d+a x pgqueuer",
            "d+a x procrastinate",
            "d+a x SQL 1",
            f"d+a x SQL {batch}",
            "enq x pgqueuer",
            "enq x procrastinate",
            "p99 x pgqueuer",
            "p99 x procrastinate",
        ],
        rows,
    )
    targets: list[list[object]] = []

    def target(what: str, name: str, store: str, value: float, goal: float, shown: str) -> None:
        if (name, store) not in by_name or value != value:
            return
        met = value <= goal if "p99" in what else value >= goal
        targets.append([what, f"{name} ({store})", shown, "met" if met else "NOT met"])

    for name in ("robofleet in-process, one at a time", f"robofleet in-process, batches of {batch}"):
        ours = by_name.get((name, "postgresql"), nan)
        target(">= 1.0x pgqueuer", name, "postgresql", ours.drain / pgq.drain, 1.0, ratio(ours.drain, pgq.drain))
        target(">= 5x procrastinate", name, "postgresql", ours.drain / proc.drain, 5.0, ratio(ours.drain, proc.drain))
        peer = ceiling if name.endswith("one at a time") else ceiling_batch
        target(">= 0.5x bare SQL", name, "postgresql", ours.drain / peer.drain, 0.5, ratio(ours.drain, peer.drain))
    for r in results:
        if r.name.startswith("robofleet HTTP"):
            target("HTTP >= 2,000 items/s", r.name, r.store, r.drain, 2000.0, number(r.drain))
    for r in results:
        if r.name.startswith("robofleet"):
            target("enqueue→start p99 <= 20 ms", r.name, r.store, r.p99, 20.0, f"{number(r.p99, 1)} ms")
    if targets:
        print_table("Targets (2 cores)", ["target", "system", "figure", ""], targets)
    for r in results:
        for note in r.notes:
            print(f"note: {note}")


SYSTEMS = (
    "robofleet-in-process",
    "robofleet-http",
    "procrastinate",
    "pgqueuer",
    "bare-sql",
    "robofleet-sqlite",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 items and 5 s of latency")
    parser.add_argument("--batch", type=int, default=10, help="items per lease and per ack in the batched rows")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--only", default=",".join(SYSTEMS), help=f"comma-separated, of: {', '.join(SYSTEMS)}")
    args = parser.parse_args()
    items, seconds = (10_000, 5.0) if args.quick else (args.items, args.latency_seconds)
    only = set(args.only.split(","))
    if not postgres_available():
        raise SystemExit("needs the local PostgreSQL at 127.0.0.1:5432 (trust, user postgres)")
    plan: list[tuple[str, Callable[[], Result]]] = []
    if "robofleet-in-process" in only:
        plan.append(("robofleet in-process 1", lambda: robofleet_in_process("postgresql", items, 1, seconds)))
        plan.append(("robofleet in-process B", lambda: robofleet_in_process("postgresql", items, args.batch, seconds)))
    if "robofleet-http" in only:
        plan.append(("robofleet HTTP 1", lambda: robofleet_http("postgresql", items, 1, seconds)))
        plan.append(("robofleet HTTP B", lambda: robofleet_http("postgresql", items, args.batch, seconds)))
    if "procrastinate" in only:
        plan.append(("procrastinate", lambda: procrastinate_run(items, seconds)))
    if "pgqueuer" in only:
        plan.append(("pgqueuer", lambda: pgqueuer_run(items, seconds)))
    if "bare-sql" in only:
        plan.append(("bare SQL 1", lambda: bare_sql(items, 1)))
        plan.append(("bare SQL B", lambda: bare_sql(items, args.batch)))
    if "robofleet-sqlite" in only:
        plan.append(("robofleet SQLite in-process 1", lambda: robofleet_in_process("sqlite", items, 1, seconds)))
        plan.append(
            ("robofleet SQLite in-process B", lambda: robofleet_in_process("sqlite", items, args.batch, seconds))
        )
        plan.append(("robofleet SQLite HTTP B", lambda: robofleet_http("sqlite", items, args.batch, seconds)))
    results = []
    for label, run in plan:
        progress(f"{label}: {items:,} items")
        results.append(run())
        last = results[-1]
        progress(
            f"  enqueue {number(last.enqueue)}/s, dequeue+ack {number(last.drain)}/s, p99 {number(last.p99, 1)} ms"
        )
    report(results, items, args.batch, seconds)


if __name__ == "__main__":
    main()
