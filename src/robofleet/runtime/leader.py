"""Which replica leads: the one `serve` process of several sharing a PostgreSQL database that does the singleton
duties (firing schedules, recovering the activities of replicas that are gone; later housekeeping).

`Leader` is the port; it is chosen once, at construction, by the store (`leader_for`). The orchestrator builds one,
hands it to every duty (each adds its own `gained` listener by `start`) and stops it after them all.

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
    """Whether this process leads, shared by every duty of the leader.

    `start(gained)` adds `gained` (a wake-up: quick, never raising) to the listeners, called on the event loop each
    time this process becomes the leader, and at once when it leads already; the first call begins leading or trying
    to, later ones only add their listener. `leads()` answers at once from what it knows. `stop()` gives the
    leadership up, for every duty at once, for another replica to take it; calling it again does nothing."""

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
    """`role` says in the log what holding the lock makes this process ("this process now leads")."""

    def __init__(
        self,
        conninfo: str,
        timeout: float,
        *,
        key: int = LEADER_KEY,
        retry_seconds: float = RETRY_SECONDS,
        role: str = "leads",
    ):
        self.conninfo = make_conninfo(conninfo, connect_timeout=max(2, int(timeout)), **PG_TCP_OPTIONS)
        self.timeout = timeout
        self.key = key
        self.retry_seconds = retry_seconds
        self.role = role
        self.leading = False
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._tasks = Tasks()
        self._listeners: list[Callable[[], None]] = []

    async def start(self, gained: Callable[[], None]) -> None:
        self._listeners.append(gained)
        if self.leading:
            gained()
        if not self._tasks:
            self._tasks.spawn(self._hold(), name=f"advisory lock {self.key}")

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
                    reason = str(exc).strip() or type(exc).__name__
                    log.warning("this process no longer %s: its connection failed (%s)", self.role, reason)
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
            log.info("this process now %s (PostgreSQL advisory lock %d)", self.role, self.key)
            for gained in list(self._listeners):
                gained()

    async def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None


def leader_for(store: Store, *, key: int = LEADER_KEY, role: str = "leads") -> Leader:
    """The leader the store calls for: an advisory lock on PostgreSQL, always this process on SQLite."""
    if store.dialect != "postgresql":
        return SoleLeader()
    url = make_url(store.settings.effective_url()).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    return AdvisoryLockLeader(conninfo, store.settings.connect_timeout, key=key, role=role)
