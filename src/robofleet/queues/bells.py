"""Waking the workers that wait for a queue's next item (`items/next?wait=`), the moment one may be there.

Each queue has a `Doorbell` on the event loop: a waiter notes the bell's count of rings, tries to lease, and
waits only if nothing rang since (so an item added between its try and its wait is never missed). A ring for
`count` new items wakes that many waiters, not all of them. Other replicas hear of items added here through a
PostgreSQL notice on `CHANNEL` (`RemoteBells`) whose payload says which queue and how many, and who sent it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from robofleet.runtime.loops import Tasks
from robofleet.store.database import Store
from robofleet.store.engine import PG_TCP_OPTIONS

log = logging.getLogger(__name__)
CHANNEL = "robofleet_queue_items"
RETRY_SECONDS = 2.0


class Doorbell:
    """One queue's waiters (on the event loop only)."""

    def __init__(self) -> None:
        self.rings = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    def ring(self, count: int | None = None) -> None:
        """Wake up to `count` waiters (all with None), oldest first."""
        self.rings += 1
        woken = 0
        while self._waiters and (count is None or woken < count):
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                woken += 1

    async def wait(self, since: int, seconds: float) -> None:
        """Return when the bell rings, at once if it rang after `since` (its count when the caller last looked),
        or after `seconds`."""
        if self.rings != since or seconds <= 0:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                await waiter
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            # Woken, then cancelled before it could lease (its client left): the item it was woken for waits for
            # another waiter, so the wake is passed on.
            if waiter.done() and not waiter.cancelled():
                self.ring(1)
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def __len__(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())


class Bells:
    """The doorbells of every queue this replica serves waiters of, by queue id."""

    def __init__(self) -> None:
        self._bells: dict[int, Doorbell] = {}
        self.closed = False

    def of(self, queue_id: int) -> Doorbell:
        bell = self._bells.get(queue_id)
        if bell is None:
            bell = self._bells[queue_id] = Doorbell()
        return bell

    def ring(self, queue_id: int, count: int | None = None) -> None:
        bell = self._bells.get(queue_id)
        if bell is not None:
            bell.ring(count)

    def ring_all(self) -> None:
        for bell in self._bells.values():
            bell.ring()

    def close(self) -> None:
        """Every waiter answers now (with nothing, unless an item is there); later ones do not wait."""
        self.closed = True
        self.ring_all()


def notice(replica: str, queue_id: int, count: int) -> str:
    return f"{replica} {queue_id} {count}"


class RemoteBells:
    """Listens on `CHANNEL` on a connection of its own; a notice from another replica rings its queue's bell for
    its count of items. After each (re)connection every bell rings once: notices sent meanwhile were lost."""

    def __init__(self, store: Store, replica: str, bells: Bells, changed: Callable[[], None]) -> None:
        url = make_url(store.settings.effective_url()).set(drivername="postgresql")
        timeout = store.settings.connect_timeout
        self.conninfo = make_conninfo(
            url.render_as_string(hide_password=False), connect_timeout=max(2, timeout), **PG_TCP_OPTIONS
        )
        self.replica = replica
        self.bells = bells
        self.changed = changed  # a queue's definition changed on another replica
        self._tasks = Tasks()

    async def start(self) -> None:
        self._tasks.spawn(self._listen(), name=f"notices {CHANNEL}")

    async def stop(self) -> None:
        await self._tasks.stop()

    def heard(self, payload: str) -> None:
        sender, _, rest = payload.partition(" ")
        if sender == self.replica:
            return  # this replica rang its own bells when it committed
        queue, _, count = rest.partition(" ")
        if queue == "changed":
            self.changed()
            return
        try:
            self.bells.ring(int(queue), int(count) if count else None)
        except ValueError:
            log.warning("an unreadable notice on %s: %r", CHANNEL, payload[:100])

    async def _listen(self) -> None:
        while True:
            connection: psycopg.AsyncConnection[Any] | None = None
            try:
                connection = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                await connection.execute(f'LISTEN "{CHANNEL}"')
                self.changed()
                self.bells.ring_all()
                async for message in connection.notifies():
                    self.heard(message.payload)
            except (psycopg.Error, OSError) as exc:
                log.warning("notices on %s interrupted (%s); listening again", CHANNEL, str(exc).strip())
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(RETRY_SECONDS)
