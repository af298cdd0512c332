"""Notices between the replicas of one PostgreSQL database: "something changed, look again" (LISTEN/NOTIFY).

A replica that changed a schedule wakes its own engine directly; the leader, in another process, hears of it
through a notice on `channel`. A notice carries nothing: the listener reads the store again. On SQLite there is
one process and nothing to tell (`notice_for` answers None).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import text
from sqlalchemy.engine import make_url

from robofleet.runtime.loops import Tasks
from robofleet.store.database import Store
from robofleet.store.engine import PG_TCP_OPTIONS

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0


class PostgresNotices:
    """`start(heard)` listens on `channel` on a connection of its own and calls `heard()` (on the event loop) for
    each notice, and once after each (re)connection: notices sent while it was not listening are lost, so it
    assumes it missed one. `send()` (blocking, any thread) notifies every listener, itself included."""

    def __init__(self, store: Store, channel: str) -> None:
        url = make_url(store.settings.effective_url()).set(drivername="postgresql")
        timeout = store.settings.connect_timeout
        self.conninfo = make_conninfo(
            url.render_as_string(hide_password=False), connect_timeout=max(2, timeout), **PG_TCP_OPTIONS
        )
        self.store = store
        self.channel = channel
        self._tasks = Tasks()

    async def start(self, heard: Callable[[], None]) -> None:
        self._tasks.spawn(self._listen(heard), name=f"notices {self.channel}")

    async def stop(self) -> None:
        await self._tasks.stop()

    def send(self) -> None:
        with self.store.transaction() as session:
            session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": self.channel})

    async def _listen(self, heard: Callable[[], None]) -> None:
        while True:
            connection: psycopg.AsyncConnection[Any] | None = None
            try:
                connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                await connection.execute(f'LISTEN "{self.channel}"')
                heard()
                async for _notice in connection.notifies():
                    heard()
            except (psycopg.Error, OSError) as exc:
                log.warning("notices on %s interrupted (%s); listening again", self.channel, str(exc).strip())
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(RETRY_SECONDS)


def notices_for(store: Store, channel: str) -> PostgresNotices | None:
    return PostgresNotices(store, channel) if store.dialect == "postgresql" else None
