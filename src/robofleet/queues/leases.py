"""The worker's side of a queue: lease the best ready item or the best N (at once, or waiting for one), and report
on it (complete, fail, extend, release; completions also N at a time), each report fenced by the lease; and the
leader's expiry of leases that ran out.

A lease is a random id and a stored expiry (`lease_expires_at`): a worker that dies, even by `kill -9`, or a
`serve` that dies, loses nothing: once the expiry has passed, the leader's pass returns the item to retry (or
abandons it past the queue's max_retries), after a restart too. Items leased N at a time each get a lease of their
own (one random part, and the item's id), reported on and expiring one by one.

On PostgreSQL the one-statement operations (a lease, a completion, an extension) run on connections held for them
(`HotConnections`), in autocommit."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, create_engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import NullPool

from robofleet.auth.principal import Principal
from robofleet.errors import Invalid
from robofleet.queues import lease_ops, store_ops
from robofleet.queues.lease_ops import Precompiled, Statements
from robofleet.queues.retries import ErrorKind, after_failure
from robofleet.queues.schemas import (
    MAX_COMPLETIONS,
    MAX_LEASE_BATCH,
    Completed,
    Completion,
    ItemOut,
    LeasedItem,
    LeaseRefusal,
)
from robofleet.queues.states import Event, ItemState
from robofleet.queues.store_ops import QueueRef
from robofleet.store.base import utcnow
from robofleet.store.database import Store, unavailable_when_lost
from robofleet.store.engine import PG_TCP_OPTIONS, ping_within
from robofleet.store.held import IDLE_CHECK_SECONDS

if TYPE_CHECKING:
    from robofleet.queues.service import QueuesService

HOUSEKEEPER = "housekeeping"  # the actor of an expiry in an item's history
HOT_APPLICATION_NAME = "robofleet queues"  # how the hot path's held connections show in pg_stat_activity
# When the only ready items are being taken by others (PostgreSQL skips their locked rows), a waiter looks again
# after this long rather than at once, unless a ring wakes it sooner.
BUSY_RETRY_SECONDS = 0.05


class Leases:
    def __init__(self, service: QueuesService) -> None:
        self.service = service
        self.store = service.store
        self.statements = Statements(self.store.dialect)
        self.hot = (
            HotConnections(self.store, self.store.settings.pool_size) if self.store.dialect == "postgresql" else None
        )
        self._forms = self.statements.driver_forms() if self.hot is not None else {}
        # SQLite takes one writer at a time: this replica's workers queue here, woken as the one before finishes,
        # rather than in SQLite's busy handler, which sleeps and polls (8 workers: a third of the rate).
        self._writer = threading.Lock() if self.store.dialect == "sqlite" else None

    def close(self) -> None:
        """Close the connections held for the hot path (at the service's stop)."""
        if self.hot is not None:
            self.hot.close()

    # ---- leasing ------------------------------------------------------------------------------------------------

    def claim(self, principal: Principal, name: str) -> LeasedItem | None:
        """Lease the queue's best ready item (priority, then deadline, then age) to the caller now; None when no
        item is ready. For callers that do not wait (the in-process API)."""
        queue = self.service.scoped(principal, "queues:work", name)
        items, _ = self._claim(principal, queue, 1, look_ahead=False)
        return items[0] if items else None

    def claim_many(self, principal: Principal, name: str, count: int) -> list[LeasedItem]:
        """Lease up to `count` of the queue's best ready items now, best first, each with a lease of its own; [] when
        none is ready. Invalid unless 1 <= count <= MAX_LEASE_BATCH."""
        _check_count(count)
        queue = self.service.scoped(principal, "queues:work", name)
        items, _ = self._claim(principal, queue, count, look_ahead=False)
        return items

    async def next(self, principal: Principal, name: str, *, wait: float = 0.0) -> LeasedItem | None:
        """Lease the best ready item, waiting up to `wait` seconds for one: woken when an item is added (here or on
        another replica), retried, released or its lease expired, and when a postponed one becomes ready."""
        items = await self.next_many(principal, name, 1, wait=wait)
        return items[0] if items else None

    async def next_many(self, principal: Principal, name: str, count: int, *, wait: float = 0.0) -> list[LeasedItem]:
        """Lease up to `count` of the best ready items, waiting up to `wait` seconds for the first: what is ready
        once one is, best first; [] when none came. Woken as `next` is."""
        principal.require("queues:work")
        _check_count(count)
        limit = self.service.settings.max_wait_seconds
        if not 0 <= wait <= limit:
            raise Invalid(f"wait must be between 0 and {limit:g} seconds", details={"field": "wait"})
        queue = self.service.cached_ref(name)
        if queue is None:
            queue = await asyncio.to_thread(self.service.queue_ref, name)
        self.service.scoped(principal, "queues:work", name, queue)
        bell = self.service.bells.of(queue.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            rang = bell.rings  # read before the try: whatever rings after it cuts the wait short
            items, ready_at = await asyncio.to_thread(self._claim, principal, queue, count, look_ahead=wait > 0)
            if items:
                return items
            remaining = deadline - loop.time()
            if remaining <= 0 or self.service.bells.closed:
                return []
            if ready_at is not None:
                until_ready = (ready_at - utcnow()).total_seconds()
                remaining = min(remaining, max(until_ready, BUSY_RETRY_SECONDS))
            await bell.wait(rang, remaining)

    def _claim(
        self, principal: Principal, queue: QueueRef, count: int, *, look_ahead: bool
    ) -> tuple[list[LeasedItem], datetime | None]:
        """The items leased (best first), or none and (with `look_ahead`) when the queue's next waiting item becomes
        ready."""
        now = utcnow()
        params = {
            "queue": queue.id,
            "now": now,
            "lease": secrets.token_hex(16),
            "expires": now + timedelta(seconds=queue.lease_seconds),
            "actor": actor_of(principal),
            "run_id": principal.run.run_id if principal.run is not None else None,
            "count": count,
        }
        with self._one_statement() as run:
            if count == 1:
                rows = run.rows(self.statements.claim, params)
            else:
                # RETURNING comes in no particular order: best first again.
                rows = sorted(
                    run.rows(self.statements.claim_many, params),
                    key=lambda row: (row.priority_rank, row.order_deadline, row.id),
                )
            if rows:
                return [store_ops.leased_out(row, queue.name) for row in rows], None
            if not look_ahead:
                return [], None
            ready = run.rows(self.statements.next_ready, {"queue": queue.id})
            return [], ready[0][0] if ready else None

    # ---- reports ------------------------------------------------------------------------------------------------

    def complete(self, principal: Principal, name: str, item_id: int, lease_id: str, output: Any) -> ItemOut:
        """The item is done, with `output`. Conflict (409, with the item's state) when the caller's lease expired
        or was taken; NotFound when the queue has no such item."""
        principal.require("queues:work")
        self.service.check_json(output, "output")
        queue = self.service.scoped(principal, "queues:work", name)
        now = utcnow()
        params = {"item_id": item_id, "queue": queue.id, "lease": lease_id, "now": now, "result": output}
        if self.statements.complete_noted is not None:
            with self._one_statement() as run:
                noted = {**params, "actor": actor_of(principal)}
                row = run.fenced(self.statements.complete_noted, noted, queue, item_id, now)
            return store_ops.item_out(row, queue.name)
        with self._writing(), self.store.connection() as connection, connection.begin():
            row = self._fenced(connection, self.statements.complete, params, queue, item_id, now)
            self._history(connection, row, Event.COMPLETED, principal, now)
        return store_ops.item_out(row, queue.name)

    def complete_many(self, principal: Principal, name: str, completions: list[Completion]) -> Completed:
        """Complete each item with its output, fenced by its own lease, with its history entry: one statement on
        PostgreSQL, one transaction on SQLite. A report whose lease the caller lost (or whose item the queue does not
        hold) is refused alone, with the reason `complete` would give; the others stand."""
        principal.require("queues:work")
        if not 1 <= len(completions) <= MAX_COMPLETIONS:
            raise Invalid(f"items: 1 to {MAX_COMPLETIONS} completions per call", details={"field": "items"})
        for index, completion in enumerate(completions):
            self.service.check_json(completion.output, f"items.{index}.output")
        queue = self.service.scoped(principal, "queues:work", name)
        now = utcnow()
        actor = actor_of(principal)
        done: set[int] = set()
        refused: list[LeaseRefusal] = []
        if self.statements.complete_many_noted is not None:
            reports = [{"i": c.id, "l": c.lease_id, "o": c.output} for c in completions]
            params = {
                "reports": reports,
                "ids": [c.id for c in completions],
                "queue": queue.id,
                "now": now,
                "actor": actor,
            }
            with self._one_statement() as run:
                done.update(row.id for row in run.rows(self.statements.complete_many_noted, params))
                refused = self._refusals(run.connection, queue, completions, done, now)
        else:
            with self._writing(), self.store.connection() as connection, connection.begin():
                entries = []
                for completion in completions:
                    fence = {
                        "item_id": completion.id,
                        "queue": queue.id,
                        "lease": completion.lease_id,
                        "now": now,
                        "result": completion.output,
                    }
                    row = connection.execute(self.statements.complete, fence).first()
                    if row is not None:
                        done.add(row.id)
                        entries.append(lease_ops.event_row(row, Event.COMPLETED, actor, ItemState.IN_PROGRESS, now))
                lease_ops.insert_events(connection, entries)
                refused = self._refusals(connection, queue, completions, done, now)
        completed = [c.id for c in completions if c.id in done]
        return Completed(completed=list(dict.fromkeys(completed)), refused=refused)

    def _refusals(
        self, connection: Connection, queue: QueueRef, completions: list[Completion], done: set[int], now: datetime
    ) -> list[LeaseRefusal]:
        """Why each report not among `done` was refused (an item reported twice: its second report)."""
        refusals = []
        seen: set[int] = set()
        for completion in completions:
            if completion.id in done and completion.id not in seen:
                seen.add(completion.id)
                continue
            error = lease_ops.why_lost(connection, self.statements, queue, completion.id, now)
            details = error.details if isinstance(error.details, dict) else {}
            refusals.append(
                LeaseRefusal(id=completion.id, code=error.code, message=error.message, state=details.get("state"))
            )
        return refusals

    def fail(
        self, principal: Principal, name: str, item_id: int, lease_id: str, kind: ErrorKind, message: str
    ) -> ItemOut:
        """A business failure is final (`failed`); an application failure is retried with backoff while the item
        has retries left (`retry`), else `abandoned`. Fenced like `complete`."""
        principal.require("queues:work")
        queue = self.service.scoped(principal, "queues:work", name)
        now = utcnow()
        fence = {"item_id": item_id, "queue": queue.id, "lease": lease_id, "now": now}
        with self.store.connection() as connection, connection.begin():
            attempts = connection.execute(self.statements.attempts_held, fence).scalar()
            if attempts is None:
                lease_ops.lost_lease(connection, self.statements, queue, item_id, now)
            decision = after_failure(
                kind, attempts=attempts, max_retries=queue.max_retries, backoff=queue.retry_backoff_seconds, now=now
            )
            params = {
                **fence,
                "new_state": decision.state.value,
                "ready": decision.ready_at or now,
                "kind": kind,
                "message": message,
                "final": 0 if decision.state == ItemState.RETRY else 1,
            }
            row = self._fenced(connection, self.statements.fail, params, queue, item_id, now)
            self._history(connection, row, Event.FAILED, principal, now)
            if decision.state == ItemState.RETRY:
                self.service.tell_others(connection, queue.id, 1)
        if decision.state == ItemState.RETRY:
            self.service.ring(queue.id, 1)
        return store_ops.item_out(row, queue.name)

    def extend(self, principal: Principal, name: str, item_id: int, lease_id: str, seconds: float) -> LeasedItem:
        """The lease now runs `seconds` from now. Fenced like `complete`: an expired lease cannot be revived."""
        principal.require("queues:work")
        if not 0 < seconds <= 86_400:
            raise Invalid("seconds must be more than 0 and at most 86400", details={"field": "seconds"})
        queue = self.service.scoped(principal, "queues:work", name)
        now = utcnow()
        params = {
            "item_id": item_id,
            "queue": queue.id,
            "lease": lease_id,
            "now": now,
            "expires": now + timedelta(seconds=seconds),
        }
        with self._one_statement() as run:
            row = run.fenced(self.statements.extend, params, queue, item_id, now)
        return store_ops.leased_out(row, queue.name)

    def release(self, principal: Principal, name: str, item_id: int, lease_id: str) -> ItemOut:
        """Give the item back unattempted: it waits again from now, its attempt not counted. Fenced."""
        principal.require("queues:work")
        queue = self.service.scoped(principal, "queues:work", name)
        now = utcnow()
        params = {"item_id": item_id, "queue": queue.id, "lease": lease_id, "now": now}
        with self.store.connection() as connection, connection.begin():
            row = self._fenced(connection, self.statements.release, params, queue, item_id, now)
            self._history(connection, row, Event.RELEASED, principal, now, attempt=row.attempts + 1)
            self.service.tell_others(connection, queue.id, 1)
        self.service.ring(queue.id, 1)
        return store_ops.item_out(row, queue.name)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Around a hot-path transaction on SQLite: one of this replica's at a time (nothing on PostgreSQL)."""
        if self._writer is None:
            yield
            return
        with self._writer:
            yield

    @contextmanager
    def _one_statement(self) -> Iterator[_Run]:
        """A connection for work that is one statement: on PostgreSQL a held one without a transaction around it
        (the statement is its own; BEGIN and COMMIT would be two more round trips), its statements run by the
        driver (`lease_ops.Precompiled`); on SQLite in a transaction as usual."""
        if self.hot is not None:
            with self.hot.connection() as (connection, held):
                yield _Run(connection, self.statements, self._forms if held else {})
            return
        with self._writing(), self.store.connection() as connection, connection.begin():
            yield _Run(connection, self.statements, {})

    def _fenced(
        self,
        connection: Connection,
        statement: Any,
        params: dict[str, Any],
        queue: QueueRef,
        item_id: int,
        now: datetime,
    ) -> Any:
        row = connection.execute(statement, params).first()
        if row is None:
            lease_ops.lost_lease(connection, self.statements, queue, item_id, now)
        return row

    def _history(
        self,
        connection: Connection,
        row: Any,
        event: Event,
        principal: Principal,
        now: datetime,
        *,
        attempt: int | None = None,
    ) -> None:
        entry = lease_ops.event_row(row, event, actor_of(principal), ItemState.IN_PROGRESS, now, attempt)
        lease_ops.insert_events(connection, [entry])

    # ---- expiry (the leader's) ----------------------------------------------------------------------------------

    def expire(self) -> tuple[int, datetime | None]:
        """Every lease past its expiry ends as an application failure would: retry with backoff, or abandoned
        past max_retries; each recorded in the item's history. The number expired, and the next expiry of the
        leases still held (None: none is)."""
        now = utcnow()
        woken: Counter[int] = Counter()
        count = 0
        with self.store.connection() as connection, connection.begin():
            queues = {queue.id: queue for queue in store_ops.all_queue_refs(connection)}
            if not queues:
                return 0, None
            due = connection.execute(self.statements.expired, {"queue_ids": list(queues), "now": now}).all()
            entries = []
            for lease in due:
                queue = queues[lease.queue_id]
                decision = after_failure(
                    "application",
                    attempts=lease.attempts,
                    max_retries=queue.max_retries,
                    backoff=queue.retry_backoff_seconds,
                    now=now,
                )
                params = {
                    "item_id": lease.id,
                    "lease": lease.lease_id,
                    "now": now,
                    "new_state": decision.state.value,
                    "ready": decision.ready_at or now,
                    "message": f"the lease of {lease.leased_by} expired",
                    "final": 0 if decision.state == ItemState.RETRY else 1,
                }
                row = connection.execute(self.statements.expire, params).first()
                if row is None:  # reported meanwhile: the report stands
                    continue
                entries.append(lease_ops.event_row(row, Event.EXPIRED, HOUSEKEEPER, ItemState.IN_PROGRESS, now))
                count += 1
                if decision.state == ItemState.RETRY:
                    woken[queue.id] += 1
            lease_ops.insert_events(connection, entries)
            for queue_id, items in woken.items():
                self.service.tell_others(connection, queue_id, items)
            following = connection.execute(self.statements.next_expiry, {"queue_ids": list(queues)}).scalar()
        for queue_id, items in woken.items():
            self.service.ring(queue_id, items)
        return count, following


class _Run:
    """Runs the hot path's statements on one connection: by the driver when their precompiled form is given."""

    def __init__(self, connection: Connection, statements: Statements, forms: dict[int, Precompiled]) -> None:
        self.connection = connection
        self.statements = statements
        self.forms = forms

    def rows(self, statement: Any, params: dict[str, Any]) -> list[Any]:
        form = self.forms.get(id(statement))
        if form is not None:
            return form.rows(self.connection, params)
        return list(self.connection.execute(statement, params))

    def fenced(self, statement: Any, params: dict[str, Any], queue: QueueRef, item_id: int, now: datetime) -> Any:
        """The row a fenced report changed; `lease_ops.lost_lease`'s error when it changed none."""
        rows = self.rows(statement, params)
        if not rows:
            lease_ops.lost_lease(self.connection, self.statements, queue, item_id, now)
        return rows[0]


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_LEASE_BATCH:
        raise Invalid(f"count must be between 1 and {MAX_LEASE_BATCH}", details={"field": "count"})


class _Held:
    """One connection of the hot path, checked only after a quiet spell (store/held.py's rule), replaced when lost.
    Used by one thread at a time."""

    def __init__(self, hot: HotConnections) -> None:
        self.hot = hot
        self.connection: Connection | None = None
        self.last_used = 0.0

    def get(self) -> Connection:
        connection = self.connection
        if connection is not None and self.usable():
            if time.monotonic() - self.last_used < IDLE_CHECK_SECONDS:
                return connection
            try:
                ping_within(connection.connection.dbapi_connection, self.hot.timeout)
                return connection
            except DisconnectionError:
                self.drop()
        self.connection = self.hot.engine.connect()
        return self.connection

    def usable(self) -> bool:
        """False once SQLAlchemy or the driver (run directly: `lease_ops.Precompiled`) saw the connection fail."""
        connection = self.connection
        if connection is None or connection.closed or connection.invalidated:
            return False
        driver = connection.connection.dbapi_connection
        return driver is not None and not (driver.closed or driver.broken)

    def drop(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.invalidate()
                self.connection.close()
        self.connection = None


class HotConnections:
    """PostgreSQL connections held for the hot path's one-statement operations, in autocommit.

    A pooled connection is pinged at each checkout (store/engine.py: a round trip as long as the statement's own);
    a held one is checked only after a quiet spell, like store/held.py's. Up to `limit` are held, each used by one
    thread at a time; past that a caller takes a pooled connection as before. They come from an engine of their own
    without a pool, so the store's pool keeps its size for everything else."""

    def __init__(self, store: Store, limit: int) -> None:
        settings = store.settings
        self.store = store
        self.limit = limit
        self.timeout = settings.connect_timeout
        self.engine = create_engine(
            store.engine.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "connect_timeout": settings.connect_timeout,
                "application_name": HOT_APPLICATION_NAME,
                # The driver's datetimes in UTC, as the store's types make them. Generic plans: the hot path's
                # statements are planned once per connection, not at each run (their plans do not depend on values).
                "options": "-c TimeZone=UTC -c plan_cache_mode=force_generic_plan",
                **PG_TCP_OPTIONS,
            },
            hide_parameters=True,
        )
        self._free: list[_Held] = []
        self._count = 0
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[tuple[Connection, bool]]:
        """A held connection and True (or, all of them busy, a pooled one and False), in autocommit; driver errors
        mapped as `Store.connection()` maps them."""
        held = self._take()
        if held is None:
            with self.store.connection() as pooled:
                yield pooled.execution_options(isolation_level="AUTOCOMMIT"), False
            return
        try:
            with unavailable_when_lost():
                connection = held.get()
                yield connection, True
        finally:
            self._give_back(held)

    def _take(self) -> _Held | None:
        with self._lock:
            if self._free:
                return self._free.pop()
            if self._closed or self._count >= self.limit:
                return None
            self._count += 1
        return _Held(self)

    def _give_back(self, held: _Held) -> None:
        held.last_used = time.monotonic()
        if not held.usable():
            held.drop()
        with self._lock:
            if not self._closed:
                self._free.append(held)
                return
            self._count -= 1
        held.drop()

    def close(self) -> None:
        """Close the idle connections now, the busy ones when given back; later callers take pooled ones."""
        with self._lock:
            self._closed = True
            idle, self._free = self._free, []
            self._count -= len(idle)
        for held in idle:
            held.drop()
        self.engine.dispose()


def actor_of(principal: Principal) -> str:
    """How an item's history names a caller: a robot run by its robot and run, anyone else as the audit log does."""
    if principal.run is not None:
        return f"robot:{principal.run.robot} run {principal.run.run_id}"
    return principal.actor
