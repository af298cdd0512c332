"""Failed logins counted in memory, per source address and per unknown username, for a window.

The stored per-account lock (users.failed_logins, locked_until) counts failures on real accounts. These counters
add what it cannot: a throttle per address that sprays many usernames, and the same lock for a username that does
not exist, so that a 429 says nothing about which usernames exist. Lost on a restart of serve, which only gives an
attacker a fresh window."""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_KEYS = 100_000


class FailureWindow:
    """How many failures each key had in the last `window` seconds; blocked from `limit` on."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, limit: int, window: float, now: float | None = None) -> int | None:
        """Seconds until `key` may try again, or None when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                return None
            while times and times[0] <= now - window:
                times.popleft()
            if not times:
                del self._failures[key]
                return None
            if len(times) < limit:
                return None
            return int(times[-limit] + window - now) + 1

    def fail(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) >= MAX_KEYS and key not in self._failures:
                self._failures.clear()  # under a flood, forgetting is better than growing without bound
            self._failures.setdefault(key, deque(maxlen=1000)).append(now)

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


failed_logins = FailureWindow()
