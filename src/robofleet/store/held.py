"""A connection kept open across many operations by the one thread or task that uses it.

A writer that takes a connection from the pool for each operation pays the pool's checkout (and on PostgreSQL
its reset) every time; one that holds a connection for ever finds it dead after the database restarted. Held
here: reused while busy, checked first after a quiet spell (a statement sent on a dead connection could not be
safely sent again), replaced when lost. A failure while busy surfaces as StoreUnavailable, as it should.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, RootTransaction

from robofleet.errors import StoreUnavailable
from robofleet.store.database import Store, unavailable_when_lost
from robofleet.store.engine import PG_TCP_OPTIONS

IDLE_CHECK_SECONDS = 1.0


class _Quiet:
    """When a held connection has been unused long enough to be checked before its next use."""

    def __init__(self) -> None:
        self._last_used = 0.0

    def spell(self) -> bool:
        return time.monotonic() - self._last_used >= IDLE_CHECK_SECONDS

    def used(self) -> None:
        self._last_used = time.monotonic()


class HeldConnection:
    """One SQLAlchemy connection of `store`, and at most one transaction on it.

    `on_connect(connection)` runs on each new connection (a lane's own pragmas, say)."""

    def __init__(self, store: Store, *, on_connect: Callable[[Connection], None] | None = None) -> None:
        self.store = store
        self.on_connect = on_connect
        self._connection: Connection | None = None
        self._transaction: RootTransaction | None = None
        self._quiet = _Quiet()

    def get(self) -> Connection:
        """The held connection, or a new one; raises StoreUnavailable when none can be had."""
        connection = self._connection
        if connection is not None and not (connection.closed or connection.invalidated):
            if not self._quiet.spell() or self.store.alive(connection):
                self._quiet.used()
                return connection
            self.drop()
        with unavailable_when_lost():
            self._connection = self.store.engine.connect()
            if self.on_connect is not None:
                self.on_connect(self._connection)
        self._quiet.used()
        return self._connection

    def begin(self) -> Connection:
        """The held connection inside a transaction: the one already begun (not checked: a check could end it, and
        a busy connection's failure surfaces anyway), or a new one."""
        if self._transaction is not None and self._connection is not None:
            return self._connection
        connection = self.get()
        with unavailable_when_lost():
            self._transaction = connection.begin()
        return connection

    def commit(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            with unavailable_when_lost():
                transaction.commit()

    def rollback(self) -> None:
        """Roll back what is begun, if anything; a connection that broke meanwhile is dropped."""
        transaction, self._transaction = self._transaction, None
        with contextlib.suppress(Exception):
            if transaction is not None:
                transaction.rollback()
        if self._connection is not None and (self._connection.invalidated or self._connection.closed):
            self.drop()

    def drop(self) -> None:
        """Forget the connection without giving it back to the pool: the driver's own errors (raw cursors) leave
        SQLAlchemy's connection looking healthy, and a connection's own settings must not reach other users."""
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()
                self._connection.close()
        self._connection = None
        self._transaction = None

    def release(self) -> None:
        """Give the connection back to the pool (what was begun is rolled back)."""
        self.rollback()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
        self._connection = None


class HeldPostgresChannel:
    """One autocommit psycopg connection used from the event loop, one statement at a time, replaced after a
    failure (no thread to wake, no BEGIN or COMMIT to send)."""

    def __init__(self, conninfo: str, timeout: float) -> None:
        self.conninfo = make_conninfo(conninfo, connect_timeout=max(2, int(timeout)), **PG_TCP_OPTIONS)
        self.timeout = timeout
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._quiet = _Quiet()

    async def execute(self, statement: str, params: Any, *, rows: bool = False) -> list[Any]:
        """The statement's rows (as named tuples) when `rows`, else []. Its own errors (a unique key, bad data)
        are raised as psycopg raised them; any other failure of the connection is StoreUnavailable."""
        async with self._lock:
            try:
                connection = await self._usable()
                # A server that stopped answering must not hold a caller for ever. asyncio.timeout, not wait_for:
                # on 3.11 wait_for loses a cancellation that comes as the statement ends, and psycopg ends a
                # cancelled statement by cancelling it on the server (a stopping processor then never stopped).
                async with asyncio.timeout(self.timeout):
                    cursor = await connection.execute(statement, params)
                self._quiet.used()
                return await cursor.fetchall() if rows else []
            except (psycopg.errors.IntegrityError, psycopg.errors.DataError):
                raise  # the statement's own fault: the connection is fine
            except (psycopg.Error, OSError, TimeoutError) as exc:
                await self._drop()
                raise StoreUnavailable(f"the store is unavailable: {str(exc).strip() or type(exc).__name__}") from exc

    async def _usable(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is not None and not self._connection.closed:
            if not self._quiet.spell():
                return self._connection
            try:
                async with asyncio.timeout(self.timeout):
                    await self._connection.execute("SELECT 1")
                return self._connection
            except (psycopg.Error, OSError, TimeoutError):
                await self._drop()
        self._connection = await psycopg.AsyncConnection.connect(
            self.conninfo, autocommit=True, row_factory=namedtuple_row
        )
        return self._connection

    async def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None

    async def close(self) -> None:
        async with self._lock:
            await self._drop()
