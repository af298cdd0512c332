"""The worker's side of a queue: lease the best ready item (at once, or waiting for one), and report on it
(complete, fail, extend, release), each report fenced by the lease; and the leader's expiry of leases that ran out.

A lease is a random id and a stored expiry (`lease_expires_at`): a worker that dies, even by `kill -9`, or a
`serve` that dies, loses nothing: once the expiry has passed, the leader's pass returns the item to retry (or
abandons it past the queue's max_retries), after a restart too."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from robofleet.auth.principal import Principal
from robofleet.errors import Invalid
from robofleet.queues import lease_ops, store_ops
from robofleet.queues.lease_ops import Statements
from robofleet.queues.retries import ErrorKind, after_failure
from robofleet.queues.schemas import ItemOut, LeasedItem
from robofleet.queues.states import Event, ItemState
from robofleet.queues.store_ops import QueueRef
from robofleet.store.base import utcnow

if TYPE_CHECKING:
    from robofleet.queues.service import QueuesService

HOUSEKEEPER = "housekeeping"  # the actor of an expiry in an item's history
# When the only ready items are being taken by others (PostgreSQL skips their locked rows), a waiter looks again
# after this long rather than at once, unless a ring wakes it sooner.
BUSY_RETRY_SECONDS = 0.05


class Leases:
    def __init__(self, service: QueuesService) -> None:
        self.service = service
        self.store = service.store
        self.statements = Statements(self.store.dialect)

    # ---- leasing ------------------------------------------------------------------------------------------------

    def claim(self, principal: Principal, name: str) -> LeasedItem | None:
        """Lease the queue's best ready item (priority, then deadline, then age) to the caller now; None when no
        item is ready. For callers that do not wait (the in-process API)."""
        principal.require("queues:work")
        item, _ = self._claim(principal, self.service.queue_ref(name), look_ahead=False)
        return item

    async def next(self, principal: Principal, name: str, *, wait: float = 0.0) -> LeasedItem | None:
        """Lease the best ready item, waiting up to `wait` seconds for one: woken when an item is added (here or on
        another replica), retried, released or its lease expired, and when a postponed one becomes ready."""
        principal.require("queues:work")
        limit = self.service.settings.max_wait_seconds
        if not 0 <= wait <= limit:
            raise Invalid(f"wait must be between 0 and {limit:g} seconds", details={"field": "wait"})
        queue = self.service.cached_ref(name)
        if queue is None:
            queue = await asyncio.to_thread(self.service.queue_ref, name)
        bell = self.service.bells.of(queue.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            rang = bell.rings  # read before the try: whatever rings after it cuts the wait short
            item, ready_at = await asyncio.to_thread(self._claim, principal, queue, look_ahead=wait > 0)
            if item is not None:
                return item
            remaining = deadline - loop.time()
            if remaining <= 0 or self.service.bells.closed:
                return None
            if ready_at is not None:
                until_ready = (ready_at - utcnow()).total_seconds()
                remaining = min(remaining, max(until_ready, BUSY_RETRY_SECONDS))
            await bell.wait(rang, remaining)

    def _claim(
        self, principal: Principal, queue: QueueRef, *, look_ahead: bool
    ) -> tuple[LeasedItem | None, datetime | None]:
        """The leased item, or None and (with `look_ahead`) when the queue's next waiting item becomes ready."""
        now = utcnow()
        params = {
            "queue": queue.id,
            "now": now,
            "lease": secrets.token_hex(16),
            "expires": now + timedelta(seconds=queue.lease_seconds),
            "actor": actor_of(principal),
            "run_id": principal.run.run_id if principal.run is not None else None,
        }
        with self._one_statement() as connection:
            row = connection.execute(self.statements.claim, params).first()
            if row is not None:
                return store_ops.leased_out(row, queue.name), None
            if not look_ahead:
                return None, None
            return None, connection.execute(self.statements.next_ready, {"queue": queue.id}).scalar()

    # ---- reports ------------------------------------------------------------------------------------------------

    def complete(self, principal: Principal, name: str, item_id: int, lease_id: str, output: Any) -> ItemOut:
        """The item is done, with `output`. Conflict (409, with the item's state) when the caller's lease expired
        or was taken; NotFound when the queue has no such item."""
        principal.require("queues:work")
        self.service.check_json(output, "output")
        queue = self.service.queue_ref(name)
        now = utcnow()
        params = {"item_id": item_id, "queue": queue.id, "lease": lease_id, "now": now, "result": output}
        if self.statements.complete_noted is not None:
            with self._one_statement() as connection:
                noted = {**params, "actor": actor_of(principal)}
                row = self._fenced(connection, self.statements.complete_noted, noted, queue, item_id, now)
            return store_ops.item_out(row, queue.name)
        with self.store.connection() as connection, connection.begin():
            row = self._fenced(connection, self.statements.complete, params, queue, item_id, now)
            self._history(connection, row, Event.COMPLETED, principal, now)
        return store_ops.item_out(row, queue.name)

    def fail(
        self, principal: Principal, name: str, item_id: int, lease_id: str, kind: ErrorKind, message: str
    ) -> ItemOut:
        """A business failure is final (`failed`); an application failure is retried with backoff while the item
        has retries left (`retry`), else `abandoned`. Fenced like `complete`."""
        principal.require("queues:work")
        queue = self.service.queue_ref(name)
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
        queue = self.service.queue_ref(name)
        now = utcnow()
        params = {
            "item_id": item_id,
            "queue": queue.id,
            "lease": lease_id,
            "now": now,
            "expires": now + timedelta(seconds=seconds),
        }
        with self._one_statement() as connection:
            row = self._fenced(connection, self.statements.extend, params, queue, item_id, now)
        return store_ops.leased_out(row, queue.name)

    def release(self, principal: Principal, name: str, item_id: int, lease_id: str) -> ItemOut:
        """Give the item back unattempted: it waits again from now, its attempt not counted. Fenced."""
        principal.require("queues:work")
        queue = self.service.queue_ref(name)
        now = utcnow()
        params = {"item_id": item_id, "queue": queue.id, "lease": lease_id, "now": now}
        with self.store.connection() as connection, connection.begin():
            row = self._fenced(connection, self.statements.release, params, queue, item_id, now)
            self._history(connection, row, Event.RELEASED, principal, now, attempt=row.attempts + 1)
            self.service.tell_others(connection, queue.id, 1)
        self.service.ring(queue.id, 1)
        return store_ops.item_out(row, queue.name)

    @contextmanager
    def _one_statement(self) -> Iterator[Connection]:
        """A connection for work that is one statement: on PostgreSQL without a transaction around it (the statement
        is its own; BEGIN and COMMIT would be two more round trips), on SQLite in a transaction as usual."""
        with self.store.connection() as connection:
            if self.store.dialect == "postgresql":
                yield connection.execution_options(isolation_level="AUTOCOMMIT")
            else:
                with connection.begin():
                    yield connection

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


def actor_of(principal: Principal) -> str:
    """How an item's history names a caller: a robot run by its robot and run, anyone else as the audit log does."""
    if principal.run is not None:
        return f"robot:{principal.run.robot} run {principal.run.run_id}"
    return principal.actor
