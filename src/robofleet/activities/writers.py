"""How submits and the sync worker's transitions become durable, one implementation per store.

A submit stores its activities and their audit record. The sync worker stores the outcome of the activity it
just ran and the start of the next one together, in one write: it is strictly serial and nothing may run before
its start is durable, so one write per activity bounds its rate, and that write must be short and must not
queue behind other work.

On SQLite both go through the processor's group committer (a commit costs microseconds there). On PostgreSQL
each is a single autocommit statement on an async connection of the processor's own, awaited on the event loop:
one round trip, no thread to wake, no BEGIN and COMMIT to send, no Python ORM work.

Every row inserted names the replica of the writer (runtime/replicas.py): recovery takes over only the rows of a
replica gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Json
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from robofleet.activities import store_ops
from robofleet.activities.schemas import ActivityOut
from robofleet.activities.store_ops import NewActivity
from robofleet.auth.principal import Principal
from robofleet.errors import Conflict
from robofleet.settings.model import StoreSettings
from robofleet.store.batching import GroupCommitter
from robofleet.store.held import HeldPostgresChannel


@dataclass(frozen=True)
class Finished:
    activity_id: int
    state: str
    result: Any
    error: dict[str, Any] | None
    at: datetime


@dataclass(frozen=True)
class Started:
    activity_id: int
    at: datetime


class ActivityWriter(Protocol):
    """Built with the replica (runtime/replicas.py) whose activities it inserts."""

    async def insert(
        self, principal: Principal, items: list[NewActivity], *, batch: bool, now: datetime, start_first: bool
    ) -> tuple[list[ActivityOut], bool]:
        """store_ops.insert's contract: (outs, created); durable once it returns."""

    async def apply(self, finished: Finished | None, started: Started | None) -> None:
        """Durable once it returns; raises StoreUnavailable when the store cannot be written."""

    async def close(self) -> None: ...


class CommitterWriter:
    def __init__(self, committer: GroupCommitter, replica: str) -> None:
        self.committer = committer
        self.replica = replica

    async def insert(
        self, principal: Principal, items: list[NewActivity], *, batch: bool, now: datetime, start_first: bool
    ) -> tuple[list[ActivityOut], bool]:
        return await self.committer.run(
            lambda session: store_ops.insert(
                session, principal, items, batch=batch, now=now, replica=self.replica, start_first=start_first
            )
        )

    async def apply(self, finished: Finished | None, started: Started | None) -> None:
        def write(session: Session) -> None:
            if finished is not None:
                store_ops.mark_finished(
                    session, finished.activity_id, finished.state, finished.result, finished.error, finished.at
                )
            if started is not None:
                store_ops.mark_running(session, started.activity_id, started.at)

        await self.committer.run(write)

    async def close(self) -> None:
        return None


_ROW = "(%s::bigint, %s::varchar, %s::json, %s::json, %s::timestamptz, %s::timestamptz)"
_UPDATE = (
    "UPDATE activities AS a SET state = v.state, result = v.result, error = v.error, "
    "started_at = coalesce(v.started_at, a.started_at), finished_at = v.finished_at "
    "FROM (VALUES {rows}) AS v(id, state, result, error, started_at, finished_at) WHERE a.id = v.id"
)
_ONE_ROW, _TWO_ROWS = _UPDATE.format(rows=_ROW), _UPDATE.format(rows=f"{_ROW}, {_ROW}")
# The rows, their ids (taken in item order, so FIFO by id holds) and the audit record, in one statement. Data-
# modifying CTEs run once whether or not the final SELECT reads them.
_INSERT = """
WITH items AS (
    SELECT e.ord, e.item, nextval(pg_get_serial_sequence('activities', 'id')) AS id
    FROM json_array_elements(%(items)s::json) WITH ORDINALITY AS e(item, ord)
    ORDER BY e.ord
), new AS (
    INSERT INTO activities (id, action, args, mode, state, requested_by, requester_id, requester_via, scopes,
                            source_ip, idempotency_key, created_at, started_at, batch_id, batch_index, replica)
    SELECT id, item->>'action', item->'args', item->>'mode', item->>'state', %(actor)s, %(requester_id)s,
           %(via)s, %(scopes)s::json, %(ip)s, item->>'key', %(now)s,
           CASE WHEN item->>'state' = 'running' THEN %(now)s::timestamptz END,
           CASE WHEN %(batch)s THEN (SELECT min(id) FROM items) END,
           CASE WHEN %(batch)s THEN ord - 1 END, %(replica)s
    FROM items
), logged AS (
    INSERT INTO audit_log (time, actor, action, target, source_ip, outcome, details)
    SELECT %(now)s, %(actor)s, 'activity.submit',
           CASE WHEN count(*) = 1 THEN min(id)::text ELSE min(id) || '..' || max(id) END, %(ip)s, 'ok',
           %(details)s::json
    FROM items
)
SELECT id FROM items ORDER BY ord
"""
_EARLIER = "SELECT * FROM activities WHERE requested_by = %s AND idempotency_key = ANY(%s)"


class PostgresWriter:
    def __init__(self, store: StoreSettings, replica: str) -> None:
        self.replica = replica
        conninfo = make_url(store.effective_url()).set(drivername="postgresql").render_as_string(hide_password=False)
        # Two connections: the serial sync worker never waits behind a burst of submits.
        self._submits = HeldPostgresChannel(conninfo, store.connect_timeout)
        self._worker = HeldPostgresChannel(conninfo, store.connect_timeout)

    async def insert(
        self, principal: Principal, items: list[NewActivity], *, batch: bool, now: datetime, start_first: bool
    ) -> tuple[list[ActivityOut], bool]:
        keys = [item.idempotency_key for item in items if item.idempotency_key]
        if keys:
            found = await self._submits.execute(_EARLIER, [principal.actor, keys], rows=True)
            earlier = store_ops.reused(
                {row.idempotency_key: store_ops.activity_out(row) for row in found}, items, batch=batch
            )
            if earlier is not None:
                return earlier, False
        rows = store_ops.new_rows(principal, items, now, start_first, self.replica)
        document = [
            {
                "action": r["action"],
                "args": r["args"],
                "mode": r["mode"],
                "state": r["state"],
                "key": r["idempotency_key"],
            }
            for r in rows
        ]
        params = {
            "items": Json(document),
            "actor": principal.actor,
            "requester_id": principal.user_id,
            "via": principal.via,
            "scopes": Json(list(principal.scopes)),
            "ip": principal.source_ip,
            "now": now,
            "batch": batch,
            "details": Json(store_ops.audit_details(items, batch)),
            "replica": self.replica,
        }
        try:
            found = await self._submits.execute(_INSERT, params, rows=True)
        except psycopg.errors.UniqueViolation:
            raise Conflict("an idempotency key of this request was just used by another request") from None
        return store_ops.outs_of([row.id for row in found], rows, batch=batch), True

    async def apply(self, finished: Finished | None, started: Started | None) -> None:
        params: list[Any] = []
        if finished is not None:
            result = None if finished.result is None else Json(finished.result)
            error = None if finished.error is None else Json(finished.error)
            params += [finished.activity_id, finished.state, result, error, None, finished.at]
        if started is not None:
            params += [started.activity_id, "running", None, None, started.at, None]
        if not params:
            return
        await self._worker.execute(_TWO_ROWS if finished is not None and started is not None else _ONE_ROW, params)

    async def close(self) -> None:
        await self._submits.close()
        await self._worker.close()
