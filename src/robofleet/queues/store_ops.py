"""Statements of queues and their items: the only SQL of the queues domain. The hot paths (claim, complete, fail,
extend, release) are prebuilt Core statements, one per store dialect, each fenced in its WHERE clause by the states
it may leave (states.TRANSITIONS) and, for a worker's report, by its lease."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from robofleet.auth.permissions import RobotRef
from robofleet.errors import Conflict, NotFound
from robofleet.queues.models import NO_DEADLINE, Queue, QueueItem, QueueItemEvent
from robofleet.queues.schemas import EventOut, ItemFilter, ItemOut, LeasedItem, QueueOut
from robofleet.queues.states import UNFINISHED, ItemState, sources

QUEUES: Table = Queue.__table__  # type: ignore[assignment]
ITEMS: Table = QueueItem.__table__  # type: ignore[assignment]
EVENTS: Table = QueueItemEvent.__table__  # type: ignore[assignment]
CHUNK = 1000  # ids per statement of a bulk act (well under either store's limit of bound parameters)


@dataclass(frozen=True)
class QueueRef:
    """What the item operations need of a queue's definition (read once, cached by the service)."""

    id: int
    name: str
    max_retries: int
    retry_backoff_seconds: float
    lease_seconds: float
    unique_references: bool
    sla_minutes: int | None
    retention_days: int
    tags: tuple[str, ...] = ()

    @property
    def scope(self) -> RobotRef:
        """The queue as a role's name globs and tags narrow it."""
        return RobotRef(self.name, self.tags)


def _ref(row: Any) -> QueueRef:
    values = dict(row._mapping)
    values["tags"] = tuple(values["tags"] or ())
    return QueueRef(**values)


def queue_out(queue: Queue) -> QueueOut:
    return QueueOut(
        name=queue.name,
        description=queue.description,
        max_retries=queue.max_retries,
        retry_backoff_seconds=queue.retry_backoff_seconds,
        lease_seconds=queue.lease_seconds,
        unique_references=queue.unique_references,
        sla_minutes=queue.sla_minutes,
        retention_days=queue.retention_days,
        tags=queue.tags,
        from_config=queue.from_config,
        created_at=queue.created_at,
        updated_at=queue.updated_at,
    )


def item_out(row: Row[Any] | Any, queue: str) -> ItemOut:
    return ItemOut(**_item_fields(row, queue))


def leased_out(row: Row[Any], queue: str) -> LeasedItem:
    return LeasedItem(**_item_fields(row, queue), lease_id=row.lease_id)


def _item_fields(row: Any, queue: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "queue": queue,
        "reference": row.reference,
        "priority": row.priority,
        "payload": row.payload,
        "state": row.state,
        "attempts": row.attempts,
        "deadline": row.deadline,
        "postpone_until": row.postpone_until,
        "ready_at": row.ready_at,
        "lease_expires_at": row.lease_expires_at,
        "leased_by": row.leased_by,
        "started_at": row.started_at,
        "output": row.output,
        "error_kind": row.error_kind,
        "error": row.error,
        "added_by": row.added_by,
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def event_out(row: Any) -> EventOut:
    return EventOut(
        id=row.id,
        at=row.at,
        event=row.event,
        actor=row.actor,
        from_state=row.from_state,
        to_state=row.to_state,
        attempt=row.attempt,
        leased_by=row.leased_by,
        started_at=row.started_at,
        error_kind=row.error_kind,
        error=row.error,
    )


# ---- queue definitions ------------------------------------------------------------------------------------------


def queue_ref(connection: Connection, name: str) -> QueueRef:
    row = connection.execute(_QUEUE_REF, {"name": name}).first()
    if row is None:
        raise no_queue(name)
    return _ref(row)


_QUEUE_REF = select(
    QUEUES.c.id,
    QUEUES.c.name,
    QUEUES.c.max_retries,
    QUEUES.c.retry_backoff_seconds,
    QUEUES.c.lease_seconds,
    QUEUES.c.unique_references,
    QUEUES.c.sla_minutes,
    QUEUES.c.retention_days,
    QUEUES.c.tags,
).where(QUEUES.c.name == bindparam("name"))


def all_queue_refs(connection: Connection) -> list[QueueRef]:
    return [_ref(row) for row in connection.execute(select(*_QUEUE_REF.selected_columns).order_by(QUEUES.c.id))]


def queues_query() -> Select[Any]:
    return select(Queue)


def find_queue(session: Any, name: str, *, lock: bool = False) -> Queue:
    stmt = select(Queue).where(Queue.name == name)
    queue: Queue | None = session.scalar(stmt.with_for_update() if lock else stmt)
    if queue is None:
        raise no_queue(name)
    return queue


def no_queue(name: str) -> NotFound:
    return NotFound(f"no queue named {name!r}", details={"queue": name})


def queue_exists(connection: Connection, name: str) -> bool:
    return connection.execute(select(QUEUES.c.id).where(QUEUES.c.name == name)).first() is not None


def set_unique_references(connection: Connection, queue_id: int, unique: bool) -> None:
    """Make the queue's live items' references unique (Conflict naming some duplicates when they are not) or free
    them. Deleted items never hold their reference."""
    if not unique:
        connection.execute(update(ITEMS).where(ITEMS.c.queue_id == queue_id).values(unique_ref=None))
        return
    duplicates = list(
        connection.execute(
            select(ITEMS.c.reference)
            .where(ITEMS.c.queue_id == queue_id, ITEMS.c.state != ItemState.DELETED, ITEMS.c.reference.is_not(None))
            .group_by(ITEMS.c.reference)
            .having(func.count() > 1)
            .limit(10)
        ).scalars()
    )
    if duplicates:
        raise Conflict(
            "the queue holds items with the same reference: delete them before making references unique",
            details={"references": duplicates},
            code="duplicate_reference",
        )
    connection.execute(
        update(ITEMS)
        .where(ITEMS.c.queue_id == queue_id, ITEMS.c.state != ItemState.DELETED)
        .values(unique_ref=ITEMS.c.reference)
    )


def unfinished_count(connection: Connection, queue_id: int) -> int:
    stmt = select(func.count()).where(ITEMS.c.queue_id == queue_id, ITEMS.c.state.in_(UNFINISHED))
    return int(connection.execute(stmt).scalar_one())


def ready_count(connection: Connection, queue_id: int, now: datetime) -> int:
    """Items a worker could lease now: waiting (new or retry) and ready (not postponed or backing off)."""
    stmt = select(func.count()).where(
        ITEMS.c.queue_id == queue_id,
        ITEMS.c.state.in_((ItemState.NEW.value, ItemState.RETRY.value)),
        ITEMS.c.ready_at <= now,
    )
    return int(connection.execute(stmt).scalar_one())


# ---- adding -----------------------------------------------------------------------------------------------------


def new_row(
    queue: QueueRef,
    *,
    reference: str | None,
    priority: int,
    payload: dict[str, Any],
    deadline: datetime | None,
    postpone_until: datetime | None,
    added_by: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "queue_id": queue.id,
        "reference": reference,
        "unique_ref": reference if queue.unique_references else None,
        "priority": priority,
        "priority_rank": -priority,
        "payload": payload,
        "state": ItemState.NEW.value,
        "attempts": 0,
        "deadline": deadline,
        "order_deadline": deadline or NO_DEADLINE,
        "postpone_until": postpone_until,
        "ready_at": max(now, postpone_until) if postpone_until else now,
        "added_by": added_by,
        "created_at": now,
    }


_INSERT = insert(ITEMS).returning(ITEMS.c.id, sort_by_parameter_order=True)


def insert_items(connection: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """The rows' ids, in the rows' order."""
    if not rows:
        return []
    return [row.id for row in connection.execute(_INSERT, rows)]


def insert_unique_items(connection: Connection, rows: list[dict[str, Any]]) -> list[int | None]:
    """Rows of a unique queue, in the items' order: each one's id, or None where another item holds its reference
    already (stored before, or by a transaction that raced this one: the unique index decides, never half a batch).

    A row without a reference cannot conflict; its id is known by order: either store numbers the rows of one
    INSERT … VALUES in their order, so those returned without a reference, by ascending id, are the rows without one
    in the items' order."""
    ids: list[int | None] = []
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(ITEMS)
        .on_conflict_do_nothing(
            index_elements=[ITEMS.c.queue_id, ITEMS.c.unique_ref], index_where=ITEMS.c.unique_ref.is_not(None)
        )
        .returning(ITEMS.c.id, ITEMS.c.unique_ref)
    )
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        returned = sorted(connection.execute(stmt.values(chunk)), key=lambda row: row.id)
        by_reference = {row.unique_ref: row.id for row in returned if row.unique_ref is not None}
        unreferenced = iter([row.id for row in returned if row.unique_ref is None])
        ids += [
            next(unreferenced) if row["unique_ref"] is None else by_reference.get(row["unique_ref"]) for row in chunk
        ]
    return ids


# ---- reading items ----------------------------------------------------------------------------------------------


def filtered(stmt: Select[Any], queue_id: int, where: ItemFilter) -> Select[Any]:
    stmt = stmt.where(ITEMS.c.queue_id == queue_id)
    if where.state:
        stmt = stmt.where(ITEMS.c.state.in_([state.value for state in where.state]))
    if where.reference_prefix:
        stmt = stmt.where(ITEMS.c.reference.startswith(where.reference_prefix, autoescape=True))
    if where.since is not None:
        stmt = stmt.where(ITEMS.c.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(ITEMS.c.created_at < where.until)
    if where.ids is not None:
        stmt = stmt.where(ITEMS.c.id.in_(where.ids))
    return stmt


def items_page(
    connection: Connection, queue_id: int, where: ItemFilter, *, limit: int, after: int | None
) -> list[Row[Any]]:
    """Up to `limit` + 1 items, newest first, older than the item `after`."""
    stmt = filtered(select(ITEMS), queue_id, where)
    if after is not None:
        stmt = stmt.where(ITEMS.c.id < after)
    return list(connection.execute(stmt.order_by(ITEMS.c.id.desc()).limit(limit + 1)))


def items_in_order(
    connection: Connection, queue_id: int, where: ItemFilter, *, after: int, limit: int
) -> list[Row[Any]]:
    """Items oldest first, after the id `after` (for an export read a page at a time)."""
    stmt = filtered(select(ITEMS), queue_id, where).where(ITEMS.c.id > after).order_by(ITEMS.c.id).limit(limit)
    return list(connection.execute(stmt))


def item_row(connection: Connection, queue: QueueRef, item_id: int) -> Row[Any]:
    row = connection.execute(select(ITEMS).where(ITEMS.c.id == item_id, ITEMS.c.queue_id == queue.id)).first()
    if row is None:
        raise NotFound(f"no item {item_id} in queue {queue.name!r}", details={"queue": queue.name, "item": item_id})
    return row


def history(connection: Connection, item_id: int) -> list[Row[Any]]:
    return list(connection.execute(select(EVENTS).where(EVENTS.c.item_id == item_id).order_by(EVENTS.c.id)))


# ---- bulk acts and retention ------------------------------------------------------------------------------------


def matching(
    connection: Connection, queue_id: int, where: ItemFilter, states: Sequence[ItemState]
) -> Iterator[list[Row[Any]]]:
    """The filter's items in `states`, a chunk at a time (id order), locked on PostgreSQL until the commit."""
    allowed = [state.value for state in states if not where.state or state in where.state]
    if not allowed:
        return
    after = 0
    while True:
        stmt = (
            filtered(select(ITEMS.c.id, ITEMS.c.state, ITEMS.c.attempts), queue_id, where)
            .where(ITEMS.c.state.in_(allowed), ITEMS.c.id > after)
            .order_by(ITEMS.c.id)
            .limit(CHUNK)
            .with_for_update()
        )
        rows = list(connection.execute(stmt))
        if not rows:
            return
        yield rows
        after = rows[-1].id


def item_states(connection: Connection, queue_id: int, ids: Sequence[int]) -> dict[int, ItemState]:
    """The state of each of `ids` that is an item of the queue."""
    stmt = select(ITEMS.c.id, ITEMS.c.state).where(ITEMS.c.queue_id == queue_id, ITEMS.c.id.in_(ids))
    return {row.id: ItemState(row.state) for row in connection.execute(stmt)}


RETRYABLE = (ItemState.FAILED, ItemState.ABANDONED)  # what an operator may retry (never an item in progress)
DELETABLE = sources(ItemState.DELETED)


def retry_items(connection: Connection, ids: list[int], now: datetime) -> list[Row[Any]]:
    """Failed or abandoned items waiting again from now, with a full round of retries; the rows changed."""
    stmt = (
        update(ITEMS)
        .where(ITEMS.c.id.in_(ids), ITEMS.c.state.in_(RETRYABLE))
        .values(state=ItemState.RETRY.value, attempts=0, ready_at=now, finished_at=None, handled_seconds=None)
        .returning(*ITEMS.c)
    )
    return list(connection.execute(stmt))


def delete_items(connection: Connection, ids: list[int], now: datetime) -> list[Row[Any]]:
    """Items marked deleted (their reference freed; gone for good at retention); the rows changed."""
    stmt = (
        update(ITEMS)
        .where(ITEMS.c.id.in_(ids), ITEMS.c.state.in_(DELETABLE))
        .values(
            state=ItemState.DELETED.value,
            unique_ref=None,
            lease_id=None,
            lease_expires_at=None,
            finished_at=now,
        )
        .returning(*ITEMS.c)
    )
    return list(connection.execute(stmt))


def purge_finished(connection: Connection, queue_id: int, before: datetime, limit: int) -> int:
    """Delete up to `limit` of the queue's items finished before `before` (their history goes with them)."""
    oldest = (
        select(ITEMS.c.id)
        .where(ITEMS.c.queue_id == queue_id, ITEMS.c.finished_at.is_not(None), ITEMS.c.finished_at < before)
        .limit(limit)
    )
    ids = list(connection.execute(oldest).scalars())
    if not ids:
        return 0
    connection.execute(delete(EVENTS).where(EVENTS.c.item_id.in_(ids)))
    return connection.execute(delete(ITEMS).where(ITEMS.c.id.in_(ids))).rowcount


def notify(connection: Connection, channel: str, payload: str) -> None:
    """A PostgreSQL notice sent when the transaction commits (and not at all if it rolls back)."""
    connection.execute(select(func.pg_notify(channel, payload)))
