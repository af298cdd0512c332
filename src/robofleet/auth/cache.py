"""A cache of authenticated principals, so a busy API does not load every token, user and role each time.

Every change to users, roles or tokens bumps one counter in the store (`auth_epoch`), in the same transaction,
whichever process makes it (the server or the CLI). A request uses a cached principal only when the counter has not
moved since it was cached. The counter itself is re-read at most every 0.25 s: a revocation in this process
counts at once, one made by another process (the CLI) within a quarter of a second.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Integer, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from robofleet.auth.principal import Principal
from robofleet.store.base import Base

if TYPE_CHECKING:
    from robofleet.store import Store

MAX_ENTRIES = 10_000
EPOCH_TTL = 0.25


class AuthEpoch(Base):
    __tablename__ = "auth_epoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)


def bump(session: Session) -> None:
    """Call inside the transaction of any change that can alter who a token or session stands for."""
    session.execute(update(AuthEpoch).where(AuthEpoch.id == 1).values(epoch=AuthEpoch.epoch + 1))
    # Once committed, this process reads the counter afresh at the next request.
    clock = epochs_of(session.get_bind())
    event.listen(session, "after_commit", lambda _session: clock.forget(), once=True)


def current_epoch(connection: Connection) -> int:
    return int(connection.execute(select(AuthEpoch.epoch).where(AuthEpoch.id == 1)).scalar_one())


def epoch_of(store: Store) -> int:
    """The counter now: as last read when that was less than EPOCH_TTL ago, else read afresh (blocking)."""
    clock = epochs_of(store.engine)
    epoch = clock.get()
    if epoch is None:
        read_at = time.monotonic()
        with store.connection() as connection:
            epoch = current_epoch(connection)
        clock.set(epoch, read_at)
    return epoch


class EpochClock:
    """The counter as last read, trusted for `EPOCH_TTL` seconds: a busy API reads it a few times a second, not
    once a request. Changes made in this process are seen at once; by another process (the CLI) within the TTL."""

    def __init__(self) -> None:
        self._value: int | None = None
        self._read_at = 0.0

    def get(self) -> int | None:
        if self._value is not None and time.monotonic() - self._read_at < EPOCH_TTL:
            return self._value
        return None

    def set(self, value: int, read_at: float) -> None:
        self._value, self._read_at = value, read_at

    def forget(self) -> None:
        self._value = None


_clocks: dict[int, EpochClock] = {}


def epochs_of(bind: object) -> EpochClock:
    """The clock of one database (an engine, or a connection of it): one process may hold several stores."""
    engine = getattr(bind, "engine", bind)
    return _clocks.setdefault(id(engine), EpochClock())


class PrincipalCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, datetime | None, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, epoch: int, now: datetime) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        cached_epoch, expires_at, principal = entry
        if cached_epoch != epoch or (expires_at is not None and expires_at <= now):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return principal

    def put(self, key: str, epoch: int, principal: Principal, expires_at: datetime | None) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (epoch, expires_at, principal)


principals = PrincipalCache()
