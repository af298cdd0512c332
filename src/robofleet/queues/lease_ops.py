"""The hot path's statements: lease the best ready item (or the best N), and a worker's reports on it (complete,
fail, extend, release; completions also N at a time), each fenced in its WHERE clause by the item's state and the
lease, so that a report from a worker that lost its lease matches no row; the leader's expiry of leases that ran out;
each item's history entries. Built once per store dialect (`Statements`), as prebuilt Core."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Json
from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Integer,
    Select,
    String,
    Update,
    and_,
    any_,
    bindparam,
    case,
    cast,
    column,
    extract,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from robofleet.errors import Conflict, NotFound
from robofleet.queues.models import WAITING_SQL
from robofleet.queues.states import Event, ItemState
from robofleet.queues.store_ops import EVENTS, ITEMS, QueueRef


class Statements:
    """The hot path's statements, built once for the store's dialect."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        now = bindparam("now", type_=ITEMS.c.ready_at.type)
        best = (
            select(ITEMS.c.id)
            # The states as literal SQL, the partial index's own predicate: with bound values neither store's planner
            # could tell that the claim's rows are all in that index.
            .where(ITEMS.c.queue_id == bindparam("queue"), text(WAITING_SQL), ITEMS.c.ready_at <= now)
            .order_by(ITEMS.c.priority_rank, ITEMS.c.order_deadline, ITEMS.c.id)
            .limit(1)
            # PostgreSQL: concurrent claims skip the rows others are taking instead of queueing behind them. SQLite
            # has one writer at a time, which makes the statement atomic as it is (the clause renders to nothing).
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        self.claim = (
            update(ITEMS)
            .where(ITEMS.c.id == best)
            .values(
                state=ItemState.IN_PROGRESS.value,
                attempts=ITEMS.c.attempts + 1,
                lease_id=bindparam("lease"),
                lease_expires_at=bindparam("expires"),
                leased_by=bindparam("actor"),
                leased_run=bindparam("run_id"),
                started_at=now,
            )
            .returning(*ITEMS.c)
        )
        # The best `count` ready items at once, each with a lease of its own: the caller's random `lease` and the item's
        # id. The pick is a CTE (on PostgreSQL a MATERIALIZED one), run once: an IN (subquery … LIMIT … SKIP LOCKED)
        # that the planner chose to scan again could lock and lease more than `count` rows.
        picked = (
            select(ITEMS.c.id)
            .where(ITEMS.c.queue_id == bindparam("queue"), text(WAITING_SQL), ITEMS.c.ready_at <= now)
            .order_by(ITEMS.c.priority_rank, ITEMS.c.order_deadline, ITEMS.c.id)
            .limit(bindparam("count", type_=Integer()))
            .with_for_update(skip_locked=True)
            .cte("picked")
        )
        chosen: ColumnElement[bool] = ITEMS.c.id.in_(select(picked.c.id))
        if dialect == "postgresql":
            picked = picked.prefix_with("MATERIALIZED")
            # The ids as one array, found by the primary key: a plan made once for any `count` (held connections use
            # generic plans) would otherwise join the pick to a scan of the whole table.
            ids = cast(select(func.array_agg(picked.c.id)).scalar_subquery(), ARRAY(BigInteger()))
            chosen = ITEMS.c.id == any_(ids)
        self.claim_many = (
            update(ITEMS)
            .where(chosen)
            .values(
                state=ItemState.IN_PROGRESS.value,
                attempts=ITEMS.c.attempts + 1,
                lease_id=bindparam("lease", type_=String()) + literal(".") + cast(ITEMS.c.id, String()),
                lease_expires_at=bindparam("expires", type_=ITEMS.c.lease_expires_at.type),
                leased_by=bindparam("actor"),
                leased_run=bindparam("run_id"),
                started_at=now,
            )
            .returning(*ITEMS.c)
        )
        self.next_ready = select(func.min(ITEMS.c.ready_at)).where(
            ITEMS.c.queue_id == bindparam("queue"), text(WAITING_SQL)
        )
        held = and_(
            ITEMS.c.id == bindparam("item_id"),
            ITEMS.c.queue_id == bindparam("queue"),
            ITEMS.c.lease_id == bindparam("lease"),
            ITEMS.c.state == ItemState.IN_PROGRESS.value,
            ITEMS.c.lease_expires_at > now,
        )
        self.attempts_held = select(ITEMS.c.attempts).where(held)
        handled = self.seconds_between(ITEMS.c.started_at, now)
        self.complete = (
            update(ITEMS)
            .where(held)
            .values(
                state=ItemState.DONE.value,
                output=bindparam("result", type_=ITEMS.c.output.type),
                lease_id=None,
                lease_expires_at=None,
                finished_at=now,
                handled_seconds=handled,
            )
            .returning(*ITEMS.c)
        )
        final = bindparam("final", type_=Integer())  # 1: the item ends here (failed, abandoned); 0: it is retried
        finished = case((final == 1, now), else_=None)
        self.fail = (
            update(ITEMS)
            .where(held)
            .values(
                state=bindparam("new_state"),
                ready_at=bindparam("ready", type_=ITEMS.c.ready_at.type),
                error_kind=bindparam("kind"),
                error=bindparam("message"),
                lease_id=None,
                lease_expires_at=None,
                finished_at=finished,
                handled_seconds=case((final == 1, handled), else_=None),
            )
            .returning(*ITEMS.c)
        )
        self.extend = (
            update(ITEMS)
            .where(held)
            .values(lease_expires_at=bindparam("expires", type_=ITEMS.c.lease_expires_at.type))
            .returning(*ITEMS.c)
        )
        # A release gives the attempt back: the item waits as it did before it was leased.
        self.release = (
            update(ITEMS)
            .where(held)
            .values(
                state=case((ITEMS.c.attempts <= 1, ItemState.NEW.value), else_=ItemState.RETRY.value),
                attempts=ITEMS.c.attempts - 1,
                ready_at=now,
                lease_id=None,
                lease_expires_at=None,
            )
            .returning(*ITEMS.c)
        )
        # An expired lease, fenced by the lease read: a report that came in meanwhile wins.
        self.expire = (
            update(ITEMS)
            .where(
                ITEMS.c.id == bindparam("item_id"),
                ITEMS.c.lease_id == bindparam("lease"),
                ITEMS.c.state == ItemState.IN_PROGRESS.value,
                ITEMS.c.lease_expires_at <= now,
            )
            .values(
                state=bindparam("new_state"),
                ready_at=bindparam("ready", type_=ITEMS.c.ready_at.type),
                error_kind="application",
                error=bindparam("message"),
                lease_id=None,
                lease_expires_at=None,
                finished_at=finished,
                handled_seconds=case((final == 1, handled), else_=None),
            )
            .returning(*ITEMS.c)
        )
        self.expired = select(
            ITEMS.c.id, ITEMS.c.queue_id, ITEMS.c.lease_id, ITEMS.c.attempts, ITEMS.c.leased_by
        ).where(
            ITEMS.c.queue_id.in_(bindparam("queue_ids", expanding=True)),
            ITEMS.c.state == ItemState.IN_PROGRESS.value,
            ITEMS.c.lease_expires_at <= now,
        )
        # PostgreSQL: a report and its history entry in one statement (an UPDATE … RETURNING and an INSERT … SELECT
        # from it, as CTEs), run outside a transaction of its own: one round trip instead of four. SQLite runs the
        # two in one transaction, in process.
        self.complete_noted = self._noted(self.complete, Event.COMPLETED)
        # PostgreSQL: N completions, each fenced by its own lease, and their history entries in one statement; the
        # reports travel as one JSON parameter (`reports`: [{"i": id, "l": lease, "o": output}, ..]) expanded into
        # rows, so its text never changes; `ids` are their ids. SQLite runs `complete` once per report, in one
        # transaction.
        self.complete_many_noted: Select[Any] | None = None
        if dialect == "postgresql":
            reports = (
                func.json_to_recordset(bindparam("reports", type_=JSON()))
                .table_valued(column("i", BigInteger()), column("l", String()), column("o", JSON()))
                .render_derived("m", with_types=True)
            )
            completed = (
                update(ITEMS)
                .where(
                    # The ids again as an array, so that the items are found by the primary key whatever the plan.
                    ITEMS.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger()))),
                    ITEMS.c.id == reports.c.i,
                    ITEMS.c.queue_id == bindparam("queue"),
                    ITEMS.c.lease_id == reports.c.l,
                    ITEMS.c.state == ItemState.IN_PROGRESS.value,
                    ITEMS.c.lease_expires_at > now,
                )
                .values(
                    state=ItemState.DONE.value,
                    output=reports.c.o,
                    lease_id=None,
                    lease_expires_at=None,
                    finished_at=now,
                    handled_seconds=handled,
                )
                .returning(*ITEMS.c)
            )
            self.complete_many_noted = self._noted(completed, Event.COMPLETED, ids_only=True)
        self.next_expiry = select(func.min(ITEMS.c.lease_expires_at)).where(
            ITEMS.c.queue_id.in_(bindparam("queue_ids", expanding=True)),
            ITEMS.c.state == ItemState.IN_PROGRESS.value,
        )
        self.state_of = select(ITEMS.c.queue_id, ITEMS.c.state, ITEMS.c.lease_expires_at).where(
            ITEMS.c.id == bindparam("item_id")
        )

    def driver_forms(self) -> dict[int, Precompiled]:
        """The statements a held PostgreSQL connection runs on the hot path, compiled for psycopg (by `id()`)."""
        hot: list[ClauseElement | None] = [
            self.claim,
            self.claim_many,
            self.next_ready,
            self.complete_noted,
            self.complete_many_noted,
            self.extend,
        ]
        return {id(statement): Precompiled(statement) for statement in hot if statement is not None}

    def _noted(self, change: Update, event: Event, *, ids_only: bool = False) -> Select[Any] | None:
        """`change` (an UPDATE … RETURNING of the item) with the item's history entry written by the same statement,
        on PostgreSQL; None elsewhere. The entry's actor is the parameter `actor`. Its rows: the items as changed, or
        with `ids_only` their ids alone."""
        if self.dialect != "postgresql":
            return None
        changed = change.cte("changed")
        entry = select(
            changed.c.id,
            bindparam("now", type_=EVENTS.c.at.type),
            literal(event.value),
            bindparam("actor"),
            literal(ItemState.IN_PROGRESS.value),
            changed.c.state,
            changed.c.attempts,
            changed.c.leased_by,
            changed.c.started_at,
            changed.c.error_kind,
            changed.c.error,
        )
        columns = ["item_id", "at", "event", "actor", "from_state", "to_state", "attempt", "leased_by", "started_at"]
        noted = insert(EVENTS).from_select([*columns, "error_kind", "error"], entry).cte("noted")
        return (select(changed.c.id) if ids_only else select(changed)).add_cte(noted)

    def seconds_between(self, start: ColumnElement[Any], end: ColumnElement[Any]) -> ColumnElement[Any]:
        """`end - start` in seconds, in the store's own date arithmetic."""
        if self.dialect == "postgresql":
            return extract("epoch", end - start)
        return cast((func.julianday(end) - func.julianday(start)) * 86_400.0, Float)

    def minute_of(self, moment: ColumnElement[Any]) -> ColumnElement[Any]:
        """Whole minutes since the epoch of `moment` (for throughput buckets)."""
        if self.dialect == "postgresql":
            return func.floor(extract("epoch", moment) / 60)
        return cast(func.strftime("%s", moment), Integer) // 60


class Precompiled:
    """A prebuilt statement compiled once for psycopg and run on the driver's connection itself: on the hot path
    SQLAlchemy's execution (cache lookup, parameter and result processing) costs as much Python as the round trip
    takes. Its parameters go as they are (aware datetimes; JSON ones wrapped as JSON), its rows come back as named
    tuples of the driver's values (the connection's TimeZone must be UTC, as SQLAlchemy's types would make them)."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_PSYCOPG)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        self.fixed: dict[str, Any] = {}  # the values the statement carries itself (literals, NULLs)
        self.json: list[str] = []  # the caller's parameters sent as JSON
        for bind, name in compiled.bind_names.items():
            if not bind.required:
                self.fixed[name] = bind.effective_value
            elif isinstance(bind.type, JSON):
                self.json.append(name)

    def rows(self, connection: Connection, params: dict[str, Any]) -> list[Any]:
        values = {**self.fixed, **params}
        for name in self.json:
            values[name] = Json(values[name])
        driver = cast_driver(connection.connection.dbapi_connection)
        with driver.cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(self.sql, values, prepare=True)
            return cursor.fetchall()


def cast_driver(driver: Any) -> psycopg.Connection[Any]:
    assert isinstance(driver, psycopg.Connection)
    return driver


_PSYCOPG = PGDialect_psycopg()  # type: ignore[no-untyped-call]
_INSERT_EVENT = insert(EVENTS)


def insert_events(connection: Connection, events: list[dict[str, Any]]) -> None:
    if events:
        connection.execute(_INSERT_EVENT, events)


def event_row(
    item: Any, event: Event, actor: str, from_state: ItemState, now: datetime, attempt: int | None = None
) -> dict[str, Any]:
    """A history entry of `item` (the row as the change left it)."""
    return {
        "item_id": item.id,
        "at": now,
        "event": event.value,
        "actor": actor,
        "from_state": from_state.value,
        "to_state": item.state,
        "attempt": item.attempts if attempt is None else attempt,
        "leased_by": item.leased_by,
        "started_at": item.started_at,
        "error_kind": item.error_kind,
        "error": item.error,
    }


def lost_lease(
    connection: Connection, statements: Statements, queue: QueueRef, item_id: int, now: datetime
) -> NoReturn:
    """Why a fenced report matched no row: NotFound for an item not in the queue, else Conflict with its state."""
    raise why_lost(connection, statements, queue, item_id, now)


def why_lost(
    connection: Connection, statements: Statements, queue: QueueRef, item_id: int, now: datetime
) -> NotFound | Conflict:
    """The error `lost_lease` raises, for a caller that reports it among others (a batch of completions)."""
    row = connection.execute(statements.state_of, {"item_id": item_id}).first()
    if row is None or row.queue_id != queue.id:
        return NotFound(f"no item {item_id} in queue {queue.name!r}", details={"queue": queue.name, "item": item_id})
    if row.state == ItemState.IN_PROGRESS and row.lease_expires_at is not None and row.lease_expires_at <= now:
        why = "its lease expired"
    elif row.state == ItemState.IN_PROGRESS:
        why = "another worker holds its lease now"
    else:
        why = f"it is {row.state} now"
    return Conflict(
        f"item {item_id} is no longer leased with this lease: {why}",
        details={"item": item_id, "state": row.state, "lease_expires_at": _iso(row.lease_expires_at)},
        code="lease_lost",
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
