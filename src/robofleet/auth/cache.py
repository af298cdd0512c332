"""A cache of authenticated principals, so a busy API does not load every token, user and role each time.

Every change to users, roles or tokens bumps one counter in the store (`auth_epoch`), in the same transaction,
whichever process makes it (the server or the CLI). A request reads that counter (one tiny query) and uses a
cached principal only when the counter has not moved since it was cached: a revocation counts at once.
"""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import Connection, Integer, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from robofleet.auth.principal import Principal
from robofleet.store.base import Base

MAX_ENTRIES = 10_000


class AuthEpoch(Base):
    __tablename__ = "auth_epoch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, default=0)


def bump(session: Session) -> None:
    """Call inside the transaction of any change that can alter who a token or session stands for."""
    session.execute(update(AuthEpoch).where(AuthEpoch.id == 1).values(epoch=AuthEpoch.epoch + 1))


def current_epoch(connection: Connection) -> int:
    return int(connection.execute(select(AuthEpoch.epoch).where(AuthEpoch.id == 1)).scalar_one())


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
