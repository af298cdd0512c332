"""The orchestrator's own Python logging, kept in the log store too: emit() never blocks and never raises;
a bounded buffer is flushed in batches by a thread of its own."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from robofleet.logs.ingest import Row, truncate

SOURCE = "orchestrator"
# Lines about writing lines would feed themselves; uvicorn's access lines belong to a proxy's log.
_formatter = logging.Formatter()
SKIPPED_LOGGERS = ("robofleet.store.batching", "robofleet.logs", "uvicorn.access")


class StoreLogHandler(logging.Handler):
    """`write(rows)` queues rows for the log store and returns at once (`LogService.write`)."""

    def __init__(
        self,
        write: Callable[[list[Row]], object],
        *,
        capacity: int = 10_000,
        batch: int = 500,
        interval: float = 0.5,
        max_message_bytes: int = 16_384,
    ) -> None:
        super().__init__()
        self.write = write
        self.buffer: deque[Row] = deque()
        self.capacity = capacity
        self.batch = batch
        self.interval = interval
        self.max_message_bytes = max_message_bytes
        self.dropped = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="logs-own-flusher", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name.startswith(SKIPPED_LOGGERS):
                return
            if len(self.buffer) >= self.capacity:
                self.dropped += 1
                return
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + _formatter.formatException(record.exc_info)
            text, truncated = truncate(message, self.max_message_bytes)
            fields = {"logger": record.name, "module": record.module, "line": record.lineno}
            self.buffer.append(
                Row(
                    datetime.fromtimestamp(record.created, UTC),
                    record.levelno,
                    SOURCE,
                    getattr(record, "run_id", None),
                    text,
                    fields,
                    truncated,
                )
            )
            if len(self.buffer) >= self.batch:
                self._wake.set()
        except Exception:
            self.handleError(record)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        while self.buffer:
            rows = [self.buffer.popleft() for _ in range(min(self.batch, len(self.buffer)))]
            if self.dropped:
                rows.append(
                    Row(
                        datetime.now(UTC),
                        logging.WARNING,
                        SOURCE,
                        None,
                        f"{self.dropped} orchestrator log lines were dropped: the buffer was full",
                        {},
                        False,
                    )
                )
                self.dropped = 0
            self.write(rows)  # fire and forget: a store outage costs these lines, never the caller

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)
        self.flush()
        super().close()
