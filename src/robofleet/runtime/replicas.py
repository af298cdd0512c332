"""Which replica a row belongs to, and whether that replica still lives.

Each `serve` process is a replica with an id of its own, fresh at every start (`new_replica_id`, made once by the
orchestrator); the activities it stores name it. On PostgreSQL a replica holds, for its whole life, a session
advisory lock keyed by its id (`replica_key`) on a connection of its own (`Presence`: the leader's advisory lock
on that key, kept open, autocommit, with TCP keepalives). The lock lives as long as that session: a `kill -9`
frees it at once. A transaction that can take it (`replica_lock_free`) holds it until it ends, so two leaders for a
moment never take the same replica's activities over twice.

A free lock is not yet a replica gone: a replica that lives loses its lock with its connection (a database restart
frees every replica's lock at once) and takes it again within the lock's retry once the database answers.
`Departures` counts a replica gone once its lock was found free and still is `GONE_AFTER_SECONDS` later.

On SQLite one process owns the file: every other replica named in it is gone at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robofleet.errors import StoreUnavailable
from robofleet.runtime.leader import RETRY_SECONDS, leader_for
from robofleet.store.database import Store

# Hashed with the id, so a replica's key never meets LEADER_KEY or another namespace's keys (but by a 2^-64 chance).
_NAMESPACE = b"robofleet:replica"
# Longer than a live replica takes to hold its lock again once the database answers: the lock's retry and a connect.
GONE_AFTER_SECONDS = 2 * RETRY_SECONDS + 1


def new_replica_id() -> str:
    """A fresh id for this process (32 hex digits: `activities.replica`)."""
    return uuid.uuid4().hex


def replica_key(replica: str) -> int:
    """The signed 64-bit advisory lock key of `replica`."""
    digest = hashlib.blake2b(_NAMESPACE + b"\0" + replica.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def replica_lock_free(session: Session, replica: str) -> bool:
    """Whether the lock of `replica` is free; if so this transaction holds it until it ends. Always on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(select(func.pg_try_advisory_xact_lock(replica_key(replica)))))


class Departures:
    """Which replicas are gone, judged from sightings of their lock: gone once it was found free and is still free
    `settle_seconds` later (seen held in between: it lives, and the count starts again)."""

    def __init__(self, settle_seconds: float) -> None:
        self.settle_seconds = settle_seconds
        self._free_since: dict[str, float] = {}

    def seen(self, replica: str, *, free: bool, now: float) -> bool:
        """Whether `replica` is gone, now that its lock was found `free` (or held) at `now` (a monotonic time)."""
        if not free:
            self._free_since.pop(replica, None)
            return False
        return now - self._free_since.setdefault(replica, now) >= self.settle_seconds

    def forget_all_but(self, replicas: Iterable[str | None]) -> None:
        """Forget the sightings of replicas no longer of interest (none of their activities are left)."""
        kept = set(replicas)
        self._free_since = {replica: at for replica, at in self._free_since.items() if replica in kept}


def departures_for(store: Store) -> Departures:
    """On PostgreSQL a free lock must stay free for `GONE_AFTER_SECONDS`; on SQLite a replica is gone at once."""
    return Departures(GONE_AFTER_SECONDS if store.dialect == "postgresql" else 0.0)


class Presence:
    """This replica's liveness lock: held once `start()` returns (StoreUnavailable when it could not be taken within
    the store's connect timeout), kept and taken again after a lost connection, given up by `stop()`."""

    def __init__(self, store: Store, replica: str) -> None:
        self.replica = replica
        self.timeout = store.settings.connect_timeout * 2
        self._lock = leader_for(store, key=replica_key(replica), role=f"holds the lock of replica {replica}")

    async def start(self) -> None:
        held = asyncio.Event()
        await self._lock.start(held.set)
        try:
            async with asyncio.timeout(self.timeout):
                await held.wait()
        except TimeoutError:
            await self._lock.stop()
            raise StoreUnavailable(f"could not take the lock of replica {self.replica}") from None

    async def stop(self) -> None:
        await self._lock.stop()
