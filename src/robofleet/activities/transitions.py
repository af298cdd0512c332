"""How the sync worker makes its transitions durable: the outcome of the activity it just ran and the start of
the next one, together, in one write.

The sync worker is strictly serial and nothing may run before its start is durable, so one write per activity
bounds its rate: that write must be short and must not queue behind other work. On SQLite it goes through the
processor's group committer (a commit costs microseconds there). On PostgreSQL it is a single autocommit
statement on an async connection of its own, awaited on the event loop: one round trip, no worker thread to
wake, no transaction to open, nothing ahead of it in a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Json
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from robofleet.activities import store_ops
from robofleet.errors import StoreUnavailable
from robofleet.settings.model import StoreSettings
from robofleet.store.batching import GroupCommitter
from robofleet.store.engine import PG_TCP_OPTIONS


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


class Transitions(Protocol):
    async def apply(self, finished: Finished | None, started: Started | None) -> None:
        """Durable once it returns; raises StoreUnavailable when the store cannot be written."""

    async def close(self) -> None: ...


class CommitterTransitions:
    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer

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


class PostgresTransitions:
    def __init__(self, store: StoreSettings) -> None:
        url = make_url(store.effective_url()).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.timeout = store.connect_timeout
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

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
        statement = _TWO_ROWS if finished is not None and started is not None else _ONE_ROW
        async with self._lock:
            try:
                connection = await self._connect()
                # A server that stopped answering must not hold the sync worker for ever.
                await asyncio.wait_for(connection.execute(statement, params), self.timeout)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                await self._drop()
                raise StoreUnavailable(f"the store is unavailable: {str(exc).strip() or type(exc).__name__}") from exc

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is None or self._connection.closed:
            conninfo = make_conninfo(self.conninfo, connect_timeout=max(2, int(self.timeout)), **PG_TCP_OPTIONS)
            self._connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        return self._connection

    async def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
