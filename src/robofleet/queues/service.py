"""Queues and their items: the only code that changes them. Definitions and operators' acts (add, bulk retry and
delete, retention) are audited in their transaction; a worker's lease and report are recorded in the item's own
history instead (who held it, how each attempt ended), as one row each, so that the hot path stays short.

Leasing is `leases.py`'s (claim, long-poll, reports, expiry); this module owns everything else and the loop that
expires leases and applies retention on the leader."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from robofleet.auth.audit import audited, record
from robofleet.auth.permissions import RobotRef, robot_scope
from robofleet.auth.principal import Principal, system_principal
from robofleet.errors import ConfigError, Conflict, Invalid, TooLarge
from robofleet.queues import lease_ops, store_ops
from robofleet.queues.bells import CHANNEL, Bells, RemoteBells, notice
from robofleet.queues.export import render
from robofleet.queues.leases import Leases, actor_of
from robofleet.queues.models import Queue
from robofleet.queues.schemas import (
    Added,
    Bulk,
    ItemDetail,
    ItemFilter,
    ItemOut,
    NewItem,
    QueueCreate,
    QueueOut,
    QueueStats,
    QueueUpdate,
    Refusal,
    Skipped,
)
from robofleet.queues.states import Event, ItemState
from robofleet.queues.stats import queue_stats
from robofleet.queues.store_ops import QueueRef
from robofleet.runtime import Loop, Timers
from robofleet.settings.declared import read_declared
from robofleet.store.base import utcnow
from robofleet.store.pagination import Page, decode_cursor, encode_cursor, paginate

if TYPE_CHECKING:
    from robofleet.orchestrator import Orchestrator

log = logging.getLogger(__name__)
REF_SECONDS = 5.0  # how long a queue's definition is reused by item operations before it is read again
RETENTION_CHUNK = 5000
EXPORT_PAGE = 1000
EXPORT_FORMATS = ("csv", "ndjson")


class QueuesService:
    """Built by the Domain's factory with the orchestrator."""

    def __init__(self, app: Orchestrator) -> None:
        self.app = app
        self.store = app.store
        self.settings = app.settings.queueing
        self.replica = app.replica
        self.leader = app.leader
        self.bells = Bells()
        # Other replicas add items too: their waiters hear of ours (and we of theirs) by a notice on PostgreSQL.
        self.remote = (
            RemoteBells(self.store, self.replica, self.bells, self.forget_queues)
            if self.store.dialect == "postgresql"
            else None
        )
        self.leases = Leases(self)
        self.loop = Loop("queues", self.settings.lease_check_seconds, self._housekeeping, gate=self.leader.leads)
        self.timers = Timers()
        self._refs: dict[str, tuple[QueueRef, float]] = {}
        self._next_retention = 0.0
        self._event_loop: asyncio.AbstractEventLoop | None = None

    async def startup(self) -> None:
        """Apply the settings file's queues, then listen for other replicas' items and, leading, expire leases
        (at once: those that ran out while no `serve` ran) and apply retention."""
        self._event_loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.apply_config, self.app.settings.queues)
        if self.remote is not None:
            await self.remote.start()
        await self.leader.start(self.loop.wake)
        self.loop.start()

    async def stop(self) -> None:
        """Waiting workers are answered (204), the loop ends; every item and lease stays stored."""
        self.bells.close()
        await self.loop.stop()
        await self.timers.stop()
        if self.remote is not None:
            await self.remote.stop()
        await asyncio.to_thread(self.leases.close)

    # ---- shared by the item operations ---------------------------------------------------------------------------

    def queue_ref(self, name: str) -> QueueRef:
        """The queue's definition as item operations use it, read again after REF_SECONDS (NotFound: no queue)."""
        ref = self.cached_ref(name)
        if ref is None:
            with self.store.connection() as connection:
                ref = store_ops.queue_ref(connection, name)
            self._refs[name] = (ref, time.monotonic())
        return ref

    def scoped(self, principal: Principal, permission: str, name: str, ref: QueueRef | None = None) -> QueueRef:
        """The queue `principal` may act on with `permission`: Forbidden without the permission, or when it may
        see the queue but not do this; NotFound when the queue is outside its roles' name globs and tags (a
        refusal would tell that a queue of that name exists)."""
        principal.require(permission)
        queue = ref if ref is not None else self.queue_ref(name)
        if not principal.can(permission, queue.scope):
            if principal.can("queues:read", queue.scope):
                principal.require(permission, queue.scope)
            raise store_ops.no_queue(name)
        return queue

    def visible(self, principal: Principal, queues: Iterable[QueueRef]) -> list[QueueRef]:
        """The queues `principal` may read, in their order."""
        return [queue for queue in queues if principal.can("queues:read", queue.scope)]

    def cached_ref(self, name: str) -> QueueRef | None:
        """The queue's definition when read less than REF_SECONDS ago (no I/O: callable on the event loop)."""
        cached = self._refs.get(name)
        return cached[0] if cached is not None and time.monotonic() - cached[1] < REF_SECONDS else None

    def forget_queues(self) -> None:
        """A definition changed (here, or on another replica): read them again."""
        self._refs = {}

    def ring(self, queue_id: int, count: int | None) -> None:
        """Wake up to `count` of this replica's waiters of the queue (from any thread, after the commit)."""
        if self._event_loop is not None and not self._event_loop.is_closed():
            self._event_loop.call_soon_threadsafe(self.bells.ring, queue_id, count)

    def tell_others(self, connection: Connection, queue_id: int | None, count: int = 0) -> None:
        """In the caller's transaction: the other replicas' waiters of the queue (None: its definition changed)."""
        if self.store.dialect == "postgresql":
            payload = f"{self.replica} changed" if queue_id is None else notice(self.replica, queue_id, count)
            store_ops.notify(connection, CHANNEL, payload)

    def check_json(self, value: Any, field: str) -> None:
        """A payload or output must be plain JSON within `queueing.max_payload_bytes` (413 naming the field)."""
        try:
            size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode())
        except ValueError:
            raise Invalid(f"{field}: NaN and infinite numbers are not JSON", details={"field": field}) from None
        limit = self.settings.max_payload_bytes
        if size > limit:
            raise TooLarge(
                f"{field} is {size:,} bytes of JSON, over the limit of {limit:,} (queueing.max_payload_bytes)",
                details={"field": field, "bytes": size, "limit": limit},
            )

    # ---- queues -------------------------------------------------------------------------------------------------

    def list_queues(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[QueueOut]:
        principal.require("queues:read")
        with self.store.transaction() as session:
            query = store_ops.queues_query()
            if robot_scope(principal.grants, "queues:read") is not None:
                with self.store.connection() as connection:
                    names = [queue.name for queue in self.visible(principal, store_ops.all_queue_refs(connection))]
                query = query.where(Queue.name.in_(names))
            page = paginate(session, query, Queue.id, limit=limit, cursor=cursor)
            return Page([store_ops.queue_out(row) for row in page.items], page.next_cursor)

    def get_queue(self, principal: Principal, name: str) -> QueueOut:
        self.scoped(principal, "queues:read", name)
        with self.store.transaction() as session:
            return store_ops.queue_out(store_ops.find_queue(session, name))

    def create_queue(self, principal: Principal, data: QueueCreate, *, from_config: bool = False) -> QueueOut:
        with audited(self.store, principal, "queue.create", data.name) as session:
            principal.require("queues:write", RobotRef(data.name, tuple(data.tags)))
            if store_ops.queue_exists(session.connection(), data.name):
                raise Conflict(f"a queue named {data.name!r} exists already", details={"queue": data.name})
            row = Queue(**data.model_dump(), from_config=from_config)
            session.add(row)
            session.flush()
            out = store_ops.queue_out(row)
        return out

    def update_queue(self, principal: Principal, name: str, data: QueueUpdate) -> QueueOut:
        changes = data.model_dump(exclude_unset=True)
        with audited(self.store, principal, "queue.update", name, {"fields": sorted(changes)}) as session:
            self.scoped(principal, "queues:write", name)
            if changes.get("tags") is not None:  # nobody moves a queue out of their own reach
                principal.require("queues:write", RobotRef(name, tuple(changes["tags"])))
            row = store_ops.find_queue(session, name, lock=True)
            unique = changes.get("unique_references")
            if unique is not None and unique != row.unique_references:
                store_ops.set_unique_references(session.connection(), row.id, unique)
            for field, value in changes.items():
                setattr(row, field, value)
            session.flush()
            out = store_ops.queue_out(row)
            self.tell_others(session.connection(), None)
        self.forget_queues()
        return out

    def delete_queue(self, principal: Principal, name: str, *, force: bool = False) -> None:
        """Delete the queue with its items and their history; Conflict while items are unfinished, unless `force`."""
        with audited(self.store, principal, "queue.delete", name, {"force": force}) as session:
            self.scoped(principal, "queues:write", name)
            row = store_ops.find_queue(session, name, lock=True)
            unfinished = store_ops.unfinished_count(session.connection(), row.id)
            if unfinished and not force:
                raise Conflict(
                    f"queue {name!r} has {unfinished} unfinished item(s): delete it with force=true to drop them too",
                    details={"queue": name, "unfinished": unfinished},
                )
            session.delete(row)
            self.tell_others(session.connection(), None)
        self.forget_queues()

    def apply_config(self, queues: list[Any]) -> None:
        """Queues of the settings file, created or brought up to date at every start and marked from config."""
        principal = system_principal("config")
        for item in queues:
            data = read_declared(QueueCreate, item, "queues")
            with self.store.connection() as connection:
                exists = store_ops.queue_exists(connection, data.name)
            try:
                if exists:
                    self.update_queue(principal, data.name, QueueUpdate(**data.model_dump(exclude={"name"})))
                else:
                    self.create_queue(principal, data, from_config=True)
            except Conflict as exc:
                raise ConfigError(f"queues.{data.name}: {exc.message}") from None

    # ---- adding items -------------------------------------------------------------------------------------------

    def add_items(self, principal: Principal, name: str, items: list[NewItem]) -> Added:
        """Add the items in one transaction: all, except those whose reference a unique queue holds already (or
        that repeat one given earlier in the request), refused one by one. Anything malformed refuses the whole
        request, naming the item and field, before anything is written."""
        self.scoped(principal, "queues:write", name)
        if len(items) > self.settings.max_batch:
            raise Invalid(
                f"items: at most {self.settings.max_batch:,} items per add (queueing.max_batch), got {len(items):,}",
                details={"field": "items", "limit": self.settings.max_batch},
            )
        for index, item in enumerate(items):
            self.check_json(item.payload, f"items.{index}.payload")
        details: dict[str, Any] = {"items": len(items)}
        actor = actor_of(principal)
        with audited(self.store, principal, "queue.add", name, details) as session:
            connection = session.connection()
            queue = store_ops.queue_ref(connection, name)  # fresh: whether references are unique must be current
            now = utcnow()
            refused: list[Refusal] = []
            rows: list[tuple[int, dict[str, Any]]] = []  # (index, row) of each item not refused, in the items' order
            first_of: dict[str, int] = {}
            for index, item in enumerate(items):
                row = store_ops.new_row(
                    queue,
                    reference=item.reference,
                    priority=item.priority,
                    payload=item.payload,
                    deadline=item.deadline,
                    postpone_until=item.postpone_until,
                    added_by=actor,
                    now=now,
                )
                if row["unique_ref"] is not None and row["unique_ref"] in first_of:
                    message = (
                        f"reference {item.reference!r} is given twice in this request "
                        f"(first at index {first_of[row['unique_ref']]})"
                    )
                    refused.append(Refusal(index=index, reason="duplicate_reference", message=message))
                    continue
                if row["unique_ref"] is not None:
                    first_of[row["unique_ref"]] = index
                rows.append((index, row))
            # In the items' order, so that the ids (the age the claim orders by) are too.
            inserted: list[int | None] = (
                list(store_ops.insert_unique_items(connection, [row for _, row in rows]))
                if queue.unique_references
                else list(store_ops.insert_items(connection, [row for _, row in rows]))
            )
            ids: dict[int, int] = {}
            for (index, row), item_id in zip(rows, inserted, strict=True):
                if item_id is None:
                    message = f"queue {name!r} holds an item with reference {row['reference']!r} already"
                    refused.append(Refusal(index=index, reason="duplicate_reference", message=message))
                else:
                    ids[index] = item_id
            refused.sort(key=lambda refusal: refusal.index)
            details.update(added=len(ids), refused=len(refused))
            if ids:
                self.tell_others(connection, queue.id, len(ids))
        if ids:
            self.ring(queue.id, len(ids))
        return Added(ids=[ids[index] for index in sorted(ids)], refused=refused)

    # ---- reading items ------------------------------------------------------------------------------------------

    def list_items(
        self, principal: Principal, name: str, where: ItemFilter, *, limit: int, cursor: str | None
    ) -> Page[ItemOut]:
        """The filter's items, newest first."""
        queue = self.scoped(principal, "queues:read", name)
        after = _cursor_id(cursor)
        if not 1 <= limit <= 500:
            raise Invalid("limit must be between 1 and 500", details={"field": "limit"})
        with self.store.connection() as connection:
            rows = store_ops.items_page(connection, queue.id, where, limit=limit, after=after)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].id) if more and rows else None
        return Page([store_ops.item_out(row, name) for row in rows], next_cursor)

    def get_item(self, principal: Principal, name: str, item_id: int) -> ItemDetail:
        """The item with its history, oldest first."""
        queue = self.scoped(principal, "queues:read", name)
        with self.store.connection() as connection:
            row = store_ops.item_row(connection, queue, item_id)
            events = store_ops.history(connection, item_id)
        out = store_ops.item_out(row, name)
        return ItemDetail(**out.model_dump(), history=[store_ops.event_out(event) for event in events])

    def export_items(self, principal: Principal, name: str, where: ItemFilter, fmt: str) -> Iterator[str]:
        """The filter's items, oldest first, as CSV or NDJSON text, read a page at a time as the caller consumes
        it. The permission, the format and the queue are checked at the call, before any text."""
        queue = self.scoped(principal, "queues:read", name)
        if fmt not in EXPORT_FORMATS:
            raise Invalid(f"format must be one of {', '.join(EXPORT_FORMATS)}", details={"field": "format"})

        def pages() -> Iterator[list[ItemOut]]:
            after = 0
            while True:
                with self.store.connection() as connection:
                    rows = store_ops.items_in_order(connection, queue.id, where, after=after, limit=EXPORT_PAGE)
                if not rows:
                    return
                yield [store_ops.item_out(row, name) for row in rows]
                after = rows[-1].id

        return render(pages(), fmt)

    def stats(self, principal: Principal, name: str) -> QueueStats:
        queue = self.scoped(principal, "queues:read", name)
        with self.store.connection() as connection:
            return queue_stats(connection, self.leases.statements, queue, utcnow())

    def ready_count(self, principal: Principal, name: str) -> int:
        """How many items of the queue a worker could lease now (the scheduler's queue trigger asks it)."""
        queue = self.scoped(principal, "queues:read", name)
        with self.store.connection() as connection:
            return store_ops.ready_count(connection, queue.id, utcnow())

    def figures(self, principal: Principal) -> list[QueueStats]:
        """Every queue's stats, in the order of their creation (for the metrics and the panel's list)."""
        principal.require("queues:read")
        with self.store.connection() as connection:
            queues = self.visible(principal, store_ops.all_queue_refs(connection))
            now = utcnow()
            return [queue_stats(connection, self.leases.statements, queue, now) for queue in queues]

    # ---- operators' bulk acts -----------------------------------------------------------------------------------

    def retry_items(self, principal: Principal, name: str, where: ItemFilter) -> Bulk:
        """The filter's failed and abandoned items wait again from now, each with a full round of retries. Of the
        `ids` given, those left as they were (done, waiting already, in progress, unknown...) are `skipped`."""
        return self._bulk(principal, name, where, "queue.retry", store_ops.RETRYABLE, store_ops.retry_items)

    def delete_items(self, principal: Principal, name: str, where: ItemFilter) -> Bulk:
        """The filter's items are marked deleted (a worker holding one gets 409), their references freed; retention
        removes them for good. Of the `ids` given, those left as they were (deleted already, unknown) are
        `skipped`. An empty filter is refused: deleting a whole queue's items is asked for by name."""
        if not where.model_dump(exclude_none=True):
            raise Invalid(
                "give a filter (state, reference_prefix, since, until or ids); for every item: state=[all states]",
                details={"field": "filter"},
            )
        return self._bulk(principal, name, where, "queue.delete_items", store_ops.DELETABLE, store_ops.delete_items)

    def _bulk(
        self,
        principal: Principal,
        name: str,
        where: ItemFilter,
        action: str,
        states: tuple[ItemState, ...],
        change: Callable[[Connection, list[int], Any], list[Any]],
    ) -> Bulk:
        details: dict[str, Any] = {"filter": where.model_dump(mode="json", exclude_none=True)}
        event = Event.RETRIED if action == "queue.retry" else Event.DELETED
        actor = actor_of(principal)
        moved: set[int] = set()
        skipped: list[Skipped] = []
        with audited(self.store, principal, action, name, details) as session:
            self.scoped(principal, "queues:write", name)
            connection = session.connection()
            queue = store_ops.queue_ref(connection, name)
            now = utcnow()
            for chunk in store_ops.matching(connection, queue.id, where, states):
                before = {row.id: ItemState(row.state) for row in chunk}
                changed = change(connection, list(before), now)
                lease_ops.insert_events(
                    connection,
                    [lease_ops.event_row(row, event, actor, before[row.id], now) for row in changed],
                )
                moved.update(row.id for row in changed)
            if where.ids:
                left = [item_id for item_id in dict.fromkeys(where.ids) if item_id not in moved]
                skipped = skipped_items(left, store_ops.item_states(connection, queue.id, left) if left else {}, states)
            count = len(moved)
            details.update(count=count, skipped=len(skipped))
            if count and event == Event.RETRIED:
                self.tell_others(connection, queue.id, count)
        if count and event == Event.RETRIED:
            self.ring(queue.id, count)
        return Bulk(count=count, skipped=skipped)

    # ---- the leader's housekeeping ------------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        _, following = await asyncio.to_thread(self.leases.expire)
        if following is not None:
            # The loop's period is the safety net: the pass comes at the next expiry itself.
            self.timers.set("expiry", (following - utcnow()).total_seconds() + 0.01, self._wake_loop)
        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + self.settings.housekeeping_seconds
            await asyncio.to_thread(self.apply_retention)

    async def _wake_loop(self) -> None:
        self.loop.wake()

    def apply_retention(self) -> int:
        """Delete each queue's items finished more than its retention_days ago, RETENTION_CHUNK per transaction;
        one audit record per queue that lost any. The number deleted."""
        principal = system_principal("queues-retention")
        with self.store.connection() as connection:
            queues = store_ops.all_queue_refs(connection)
        total = 0
        for queue in queues:
            cutoff = utcnow() - timedelta(days=queue.retention_days)
            deleted = 0
            while True:
                with self.store.transaction() as session:
                    done = store_ops.purge_finished(session.connection(), queue.id, cutoff, RETENTION_CHUNK)
                deleted += done
                if done < RETENTION_CHUNK:
                    break
            if deleted:
                with self.store.transaction() as session:
                    record(session, principal, "queue.retention", queue.name, "ok", {"deleted": deleted})
            total += deleted
        return total


def skipped_items(left: list[int], found: dict[int, ItemState], moves: tuple[ItemState, ...]) -> list[Skipped]:
    """Why each of `left` (ids a bulk act was given and did not change) was left: no item of the queue, a state the
    act does not move (`moves`: the states it does), or else the filter's other conditions."""
    skipped = []
    for item_id in left:
        state = found.get(item_id)
        reason = "not_found" if state is None else "filtered_out" if state in moves else "wrong_state"
        skipped.append(Skipped(id=item_id, state=state, reason=reason))
    return skipped


def _cursor_id(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        return int(decode_cursor(cursor))
    except ValueError:
        raise Invalid("the cursor is not one this server handed out", code="invalid_cursor") from None
