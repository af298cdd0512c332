"""Which replica leads: the one `serve` process of several sharing a PostgreSQL database that does the singleton
duties (firing schedules; later the activity processor's restart recovery, housekeeping).

`Leader` is the port; it is chosen once, at construction, by the store (`leader_for`):

- `SoleLeader` (SQLite): one process owns the file, so it always leads.
- `AdvisoryLockLeader` (PostgreSQL): holds `pg_try_advisory_lock(key)` on a connection of its own, kept open and
  autocommit. The lock lives as long as that session: a leader that dies (even `kill -9`) loses it as soon as
  PostgreSQL sees its connection close, and the others, retrying every `retry_seconds`, take over. A leader whose
  connection breaks stops leading at once (it cannot know whether the server still counts it). Leading is a hint
  for doing work, never the only guard: whatever a leader writes must still be fenced in its own transaction
  (the scheduler moves `next_fire_at` only from the value it read), so two leaders for a moment do no harm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from robofleet.runtime.loops import Tasks
from robofleet.store.database import Store
from robofleet.store.engine import PG_TCP_OPTIONS

log = logging.getLogger(__name__)
# One lock for the singleton duties of all replicas of one database ("robofleet" in ASCII, a signed 64-bit key).
LEADER_KEY = 0x726F626F666C6565
RETRY_SECONDS = 2.0


class Leader(Protocol):
    """Whether this process leads. `start(gained)` begins leading or trying to, calling `gained()` (on the event loop)
    each time it becomes the leader; `leads()` answers at once from what it knows; `stop()` gives the leadership up
    for another to take it."""

    async def start(self, gained: Callable[[], None]) -> None: ...

    async def leads(self) -> bool: ...

    async def stop(self) -> None: ...


class SoleLeader:
    async def start(self, gained: Callable[[], None]) -> None:
        gained()

    async def leads(self) -> bool:
        return True

    async def stop(self) -> None:
        return None


class AdvisoryLockLeader:
    def __init__(self, conninfo: str, timeout: float, *, key: int = LEADER_KEY, retry_seconds: float = RETRY_SECONDS):
        self.conninfo = make_conninfo(conninfo, connect_timeout=max(2, int(timeout)), **PG_TCP_OPTIONS)
        self.timeout = timeout
        self.key = key
        self.retry_seconds = retry_seconds
        self.leading = False
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._tasks = Tasks()
        self._gained: Callable[[], None] = lambda: None

    async def start(self, gained: Callable[[], None]) -> None:
        self._gained = gained
        self._tasks.spawn(self._hold(), name="leader")

    async def leads(self) -> bool:
        return self.leading

    async def stop(self) -> None:
        await self._tasks.stop()
        if self._connection is not None and self.leading:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await self._connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self.leading = False
        await self._drop()

    async def _hold(self) -> None:
        while True:
            try:
                await self._attempt()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                if self.leading:
                    log.warning("lost the leadership: its connection failed (%s)", str(exc).strip() or type(exc))
                self.leading = False
                await self._drop()
            await asyncio.sleep(self.retry_seconds)

    async def _attempt(self) -> None:
        """Take the lock when not leading; when leading, check that its connection (and so the lock) still lives."""
        async with asyncio.timeout(self.timeout):
            if self._connection is None or self._connection.closed:
                self.leading = False
                self._connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
            if self.leading:
                await self._connection.execute("SELECT 1")
                return
            cursor = await self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
            row = await cursor.fetchone()
        if row is not None and row[0]:
            self.leading = True
            log.info("this process now leads (PostgreSQL advisory lock %d)", self.key)
            self._gained()

    async def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None


def leader_for(store: Store, *, key: int = LEADER_KEY) -> Leader:
    """The leader the store calls for: an advisory lock on PostgreSQL, always this process on SQLite."""
    if store.dialect != "postgresql":
        return SoleLeader()
    url = make_url(store.settings.effective_url()).set(drivername="postgresql")
    return AdvisoryLockLeader(url.render_as_string(hide_password=False), store.settings.connect_timeout, key=key)
