"""A short-lived cache of authenticated principals, so a busy API does not look every token up each time.

Entries live `TTL_SECONDS` at most and never past the token's expiry; every change to users, roles or tokens
in this process clears the cache at once. Changes made by another process (the CLI) take effect within the TTL.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime

from robofleet.auth.principal import Principal

TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


class PrincipalCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, datetime | None, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: datetime) -> Principal | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        deadline, expires_at, principal = entry
        if time.monotonic() > deadline or (expires_at is not None and expires_at <= now):
            with self._lock:
                self._entries.pop(key, None)
            return None
        return principal

    def put(self, key: str, principal: Principal, expires_at: datetime | None) -> None:
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (time.monotonic() + TTL_SECONDS, expires_at, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


principals = PrincipalCache()
