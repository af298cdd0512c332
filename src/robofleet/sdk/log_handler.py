"""`RobofleetLogHandler`: a standard `logging.Handler` for robots.

emit() only appends to a bounded buffer; a thread of its own sends batches to `POST /api/v1/logs`. While the
orchestrator is away the buffer keeps the newest records (dropping the oldest past `capacity`), retries with
backoff, and once through it sends a warning that says how many records were dropped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

import httpx

_formatter = logging.Formatter()
RETRYABLE = {408, 425, 429}


class RobofleetLogHandler(logging.Handler):
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        source: str | None = None,
        run_id: str | None = None,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        capacity: int = 10_000,
        timeout: float = 5.0,
        max_backoff: float = 30.0,
        level: int = logging.NOTSET,
    ) -> None:
        """Defaults come from the run context the agent sets: ROBOFLEET_URL, ROBOFLEET_TOKEN,
        ROBOFLEET_RUN_ID and ROBOFLEET_ROBOT (source `robot:<name>`)."""
        super().__init__(level)
        self.url = (url or os.environ.get("ROBOFLEET_URL", "http://127.0.0.1:8080")).rstrip("/")
        self.token = token or os.environ.get("ROBOFLEET_TOKEN", "")
        self.source = source or f"robot:{os.environ.get('ROBOFLEET_ROBOT', 'unknown')}"
        self.run_id = run_id or os.environ.get("ROBOFLEET_RUN_ID") or None
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.capacity = capacity
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.sent = 0
        self.dropped = 0
        self._unreported_drops = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="robofleet-log-shipper", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + _formatter.formatException(record.exc_info)
            item: dict[str, Any] = {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname if record.levelname in logging.getLevelNamesMapping() else record.levelno,
                "source": self.source,
                "message": message,
                "fields": {"logger": record.name, "line": record.lineno},
            }
            run_id = getattr(record, "run_id", None) or self.run_id
            if run_id:
                item["run_id"] = str(run_id)
            extra = getattr(record, "fields", None)
            if isinstance(extra, dict):
                item["fields"].update(extra)
            with self._buffer_lock:
                if len(self._buffer) >= self.capacity:
                    self._buffer.popleft()  # the newest lines say most about what is happening now
                    self.dropped += 1
                    self._unreported_drops += 1
                self._buffer.append(item)
                self._idle.clear()
            if len(self._buffer) >= self.batch_size:
                self._wake.set()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.send_now(self.timeout)

    def send_now(self, timeout: float | None = None) -> bool:
        """Ask for an immediate send and wait (up to `timeout`) until the buffer is empty; True if it is."""
        self._wake.set()
        return self._idle.wait(timeout if timeout is not None else self.timeout * 2)

    def close(self) -> None:
        self.send_now(self.timeout)
        self._closing.set()
        self._wake.set()
        self._thread.join(self.timeout)
        super().close()

    def _run(self) -> None:
        backoff = 0.5
        with httpx.Client(
            base_url=self.url, timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"}
        ) as client:
            while not self._closing.is_set():
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                while self._buffer and not self._closing.is_set():
                    if self._send_one_batch(client):
                        backoff = 0.5
                    else:
                        self._wake.wait(backoff)
                        self._wake.clear()
                        backoff = min(backoff * 2, self.max_backoff)
                        break
                if not self._buffer:
                    self._idle.set()

    def _send_one_batch(self, client: httpx.Client) -> bool:
        with self._buffer_lock:
            batch = [self._buffer.popleft() for _ in range(min(self.batch_size, len(self._buffer)))]
            drops = self._unreported_drops
            self._unreported_drops = 0
        if drops:
            batch.append(
                {
                    "time": datetime.now(UTC).isoformat(),
                    "level": "WARNING",
                    "source": self.source,
                    "message": f"{drops} log records were dropped: the orchestrator was unreachable and "
                    f"the buffer of {self.capacity} was full",
                    **({"run_id": self.run_id} if self.run_id else {}),
                }
            )
        try:
            response = client.post("/api/v1/logs", json={"records": batch})
        except httpx.HTTPError:
            self._give_back(batch, drops)
            return False
        if response.status_code >= 500 or response.status_code in RETRYABLE:
            self._give_back(batch, drops)
            return False
        if response.status_code >= 400 and response.status_code != 422:
            # Refused for good (a bad token, say): keeping them would only grow the buffer forever.
            self.dropped += len(batch)
            return True
        self.sent += len(batch) - (1 if drops else 0)
        return True

    def _give_back(self, batch: list[dict[str, Any]], drops: int) -> None:
        with self._buffer_lock:
            if drops:
                batch.pop()  # the drop notice is rebuilt, with the count so far, on the next try
                self._unreported_drops += drops
            room = self.capacity - len(self._buffer)
            keep = batch[-room:] if room > 0 else []
            lost = len(batch) - len(keep)
            if lost:
                self.dropped += lost
                self._unreported_drops += lost
            self._buffer.extendleft(reversed(keep))
