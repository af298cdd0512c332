"""`RobofleetLogHandler`: a standard `logging.Handler` for robots.

emit() only encodes the record and appends it to a bounded buffer; a thread of its own sends batches (at most
`batch_size` records and `max_batch_bytes` bytes) to `POST /api/v1/logs`. While the orchestrator is away the
buffer keeps the newest records (dropping the oldest past `capacity`) and retries with backoff. A batch refused
as too large is halved until it fits; a record the orchestrator refuses for good is dropped. Every drop is
counted, and a warning record says how many were dropped and why. Records logged by the shipper thread itself
(httpx's own lines while it sends) are never shipped. close() gives up after `close_timeout`, says on stderr how
many records it could not deliver, and writes those records there (`LEVEL:logger:message`).

Stored once: in a robofleet run, the run's stdout and stderr are its output, which robofleet stores too. A robot
that logs through this handler and through logging's usual stream handler (basicConfig's, to stderr) would have
each record stored twice. So, in a run (`mute_streams`, on when ROBOFLEET_RUN_ID is set), the stream handlers that
write to this process's stdout or stderr get a filter that leaves out the records this handler ships: the
handler's copy, with its exact level, time, logger, line and fields, is the one stored. The filter is added to the
stream handlers of every logger that exists when the handler is made, and to any other on a record's way when the
record passes; a record such a handler wrote before it had the filter is not shipped (the output has it). Lines a
robot prints, and tracebacks it dies of, are output as before. At close the filter lets everything through again
and what could not be delivered is written to stderr: output, which the run's agent stores.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
import weakref
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

import httpx

_formatter = logging.Formatter()
RETRYABLE = {408, 425, 429}
MIN_BACKOFF = 0.5
WAITED_ON_BACKOFF = 0.2
SMALLEST_BATCH_BYTES = 1024
# flush() then close() in quick succession (as logging.shutdown calls them) share one close_timeout.
SHARED_BUDGET_GRACE = 0.5
TRANSPORT_LOGGERS = ("httpx", "httpcore")


def encode_record(item: dict[str, Any]) -> bytes:
    """The record as UTF-8 JSON. Objects JSON cannot carry become their str(); text that is not valid Unicode
    (lone surrogates, as os.fsdecode makes of undecodable bytes) becomes backslash escapes, `report-\\xff.csv`.
    Raises whatever str() of a field raises."""
    text = json.dumps(item, ensure_ascii=False, default=str, separators=(",", ":"))
    try:
        return text.encode()
    except UnicodeEncodeError:
        return json.dumps(_valid_unicode(json.loads(text)), ensure_ascii=False, separators=(",", ":")).encode()


def _valid_unicode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            # Surrogate escapes stand for bytes: shown as \xff, the way Python shows the byte.
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, list):
        return [_valid_unicode(item) for item in value]
    if isinstance(value, dict):
        return {_valid_unicode(key): _valid_unicode(item) for key, item in value.items()}
    return value


def log_records(count: int) -> str:
    return "1 log record" if count == 1 else f"{count} log records"


def refusal_of(response: httpx.Response) -> str:
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text
    return f"HTTP {response.status_code}: {message[:200]}"


class RobofleetLogHandler(logging.Handler):
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        source: str | None = None,
        run_id: str | None = None,
        batch_size: int = 500,
        max_batch_bytes: int = 256 * 1024,
        flush_interval: float = 1.0,
        capacity: int = 10_000,
        timeout: float = 5.0,
        max_backoff: float = 30.0,
        close_timeout: float = 2.0,
        level: int = logging.NOTSET,
        mute_streams: bool | None = None,
    ) -> None:
        """Defaults come from the run context the agent sets: ROBOFLEET_URL, ROBOFLEET_TOKEN,
        ROBOFLEET_RUN_ID and ROBOFLEET_ROBOT (source `robot:<name>`). `mute_streams` (default: in a run) leaves out
        of the process's stdout and stderr stream handlers the records this handler ships (see the module)."""
        super().__init__(level)
        self.url = (url or os.environ.get("ROBOFLEET_URL", "http://127.0.0.1:8080")).rstrip("/")
        self.token = token or os.environ.get("ROBOFLEET_TOKEN", "")
        self.source = source or f"robot:{os.environ.get('ROBOFLEET_ROBOT', 'unknown')}"
        self.run_id = run_id or os.environ.get("ROBOFLEET_RUN_ID") or None
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.flush_interval = flush_interval
        self.capacity = capacity
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.close_timeout = close_timeout
        self.sent = 0
        self.dropped = 0
        self._unreported_drops: Counter[str] = Counter()
        self._buffer: deque[bytes] = deque()
        self._in_flight = 0
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._give_up_at: float | None = None
        self._last_failure = "not tried yet"
        self._complained = False
        self._thread = threading.Thread(target=self._run, name="robofleet-log-shipper", daemon=True)
        self._thread.start()
        self._shipper_id = self._thread.ident
        # httpx narrates each request it sends at INFO: on the robot's other handlers (its stderr, which the agent
        # stores as the robot's output) those lines of the shipper's own would be a line per batch, forever.
        for name in TRANSPORT_LOGGERS:
            logging.getLogger(name).addFilter(self._not_shipper)
        self.mute_streams = bool(os.environ.get("ROBOFLEET_RUN_ID")) if mute_streams is None else mute_streams
        self._muted: weakref.WeakSet[logging.Handler] = weakref.WeakSet()
        self._muted_lock = threading.Lock()
        if self.mute_streams:
            for logger in [logging.root, *logging.root.manager.loggerDict.values()]:
                if isinstance(logger, logging.Logger):
                    for handler in list(logger.handlers):
                        self._mute(handler)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def _not_shipper(self, record: logging.LogRecord) -> bool:
        return record.thread != self._shipper_id

    def handle(self, record: logging.LogRecord) -> bool:
        # Decided before Handler.handle takes the handler's lock: logging.shutdown holds it through flush(),
        # and the shipper logging while it sends would wait for it.
        emitted_on = record.thread if record.thread is not None else threading.get_ident()
        if emitted_on == self._shipper_id:
            return False  # its own sending: shipping that would cause another request, forever
        if self.mute_streams and self._echoed_already(record):
            return False  # a stream handler wrote it before it had the filter: the run's output has it
        return super().handle(record)

    def _echoed_already(self, record: logging.LogRecord) -> bool:
        """Mute the stream handlers on the record's way; True when one before this handler wrote it unmuted."""
        echoed, before = False, True
        for handler in _handlers_on_way_of(record):
            if handler is self:
                before = False
            elif self._mute(handler) and before and record.levelno >= handler.level:
                echoed = True
        return echoed

    def _mute(self, handler: logging.Handler) -> bool:
        """Give a handler that writes to stdout or stderr the filter; True when it had not had it."""
        if not _writes_to_output(handler):
            return False
        with self._muted_lock:
            if handler in self._muted:
                return False
            self._muted.add(handler)
        handler.addFilter(self._not_shipped_here)
        return True

    def _not_shipped_here(self, record: logging.LogRecord) -> bool:
        """The filter of muted stream handlers: False for a record this handler ships."""
        if self._closing.is_set() or record.levelno < self.level:
            return True
        if (record.thread if record.thread is not None else threading.get_ident()) == self._shipper_id:
            return True
        if not any(handler is self for handler in _handlers_on_way_of(record)):
            return True
        return not self.filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            item = self._item_of(record)
        except Exception:
            self.handleError(record)
            return
        try:
            encoded = encode_record(item)
        except Exception as exc:
            self._drop(1, f"could not be encoded ({type(exc).__name__}: {exc})")
            self._wake.set()
            return
        with self._buffer_lock:
            if len(self._buffer) >= self.capacity:
                self._buffer.popleft()  # the newest lines say most about what is happening now
                self.dropped += 1
                self._unreported_drops[self._full_reason()] += 1
            self._buffer.append(encoded)
            self._idle.clear()
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    def flush(self) -> None:
        """Wait until what is buffered is stored, `close_timeout` at most."""
        if self._wait_idle(self._budget()):
            self._give_up_at = None

    def send_now(self, timeout: float | None = None) -> bool:
        """Ask for an immediate send and wait (up to `timeout`) until the buffer is empty; True if it is."""
        return self._wait_idle(time.monotonic() + (timeout if timeout is not None else self.timeout * 2))

    def close(self) -> None:
        """Deliver what is buffered, giving up `close_timeout` after this call (or after a flush() just before
        it), then write one line to stderr if any records could not be delivered."""
        if not self._closing.is_set():
            self._give_up_at = self._budget()
            self._closing.set()
            self._wake.set()
            self._thread.join(max(0.0, self._give_up_at - time.monotonic()) + 0.1)
            with self._buffer_lock:
                undelivered = len(self._buffer) + self._in_flight + sum(self._unreported_drops.values())
                left = list(self._buffer)
            if undelivered:
                self._say(
                    f"{log_records(undelivered)} could not be delivered to {self.url} (last failure: "
                    f"{self._last_failure})"
                )
                if self.mute_streams:
                    self._write_out(left)
            elif self._complained:  # what was refused was said once, when it began: the total is said here
                self._say(f"{log_records(self.dropped)} dropped in all: the orchestrator refused them")
        for name in TRANSPORT_LOGGERS:
            logging.getLogger(name).removeFilter(self._not_shipper)
        super().close()

    def _item_of(self, record: logging.LogRecord) -> dict[str, Any]:
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
        return item

    def _budget(self) -> float:
        now = time.monotonic()
        if self._give_up_at is None or now > self._give_up_at + SHARED_BUDGET_GRACE:
            self._give_up_at = now + self.close_timeout
        return self._give_up_at

    def _wait_idle(self, deadline: float) -> bool:
        self._wake.set()
        return self._idle.wait(max(0.0, deadline - time.monotonic()))

    def _given_up(self) -> bool:
        return self._closing.is_set() and self._give_up_at is not None and time.monotonic() >= self._give_up_at

    def _run(self) -> None:
        while True:
            try:
                with httpx.Client(
                    base_url=self.url, timeout=self.timeout, headers={"Authorization": f"Bearer {self.token}"}
                ) as client:
                    self._ship_until_closed(client)
                return
            except Exception as exc:  # the thread must outlive anything: every later line would be lost silently
                self._last_failure = f"{type(exc).__name__}: {exc}"
                if self._closing.is_set():
                    return
                self._wake.wait(self.max_backoff)

    def _ship_until_closed(self, client: httpx.Client) -> None:
        backoff = MIN_BACKOFF
        while True:
            if not self._closing.is_set():
                self._wake.wait(self.flush_interval)
                self._wake.clear()
            if self._ship(client):
                backoff = MIN_BACKOFF
                if self._closing.is_set():
                    return
                continue
            if self._given_up():
                return
            pause = backoff
            if self._give_up_at is not None and (left := self._give_up_at - time.monotonic()) > 0:
                pause = min(backoff, WAITED_ON_BACKOFF, left)  # flush() or close() is waiting: try again soon
            self._wake.wait(pause)
            self._wake.clear()
            backoff = min(backoff * 2, self.max_backoff)

    def _ship(self, client: httpx.Client) -> bool:
        """Send until the buffer is empty and every drop is reported (True), or a send fails for now (False)."""
        while not self._given_up():
            batch = self._take_batch()
            if batch and not self._deliver(client, batch):
                return False
            if not self._report_drops(client):
                return False
            if not batch:
                with self._buffer_lock:
                    if not self._buffer and not self._unreported_drops:
                        self._idle.set()
                        return True
        return False

    def _take_batch(self) -> list[bytes]:
        with self._buffer_lock:
            batch: list[bytes] = []
            size = 0
            while self._buffer and len(batch) < self.batch_size:
                if batch and size + len(self._buffer[0]) + 1 > self.max_batch_bytes:
                    break
                batch.append(self._buffer.popleft())
                size += len(batch[-1]) + 1
            self._in_flight = len(batch)
            return batch

    def _deliver(self, client: httpx.Client, batch: list[bytes]) -> bool:
        """Store the batch, halving it while the orchestrator finds it too large. True once each record is stored
        or dropped; False when the orchestrator cannot take it now (the records are back in the buffer)."""
        chunks = [batch]  # the next one to send is the last
        chunk: list[bytes] = []
        try:
            while chunks:
                chunk = chunks.pop()
                try:
                    response = self._post(client, chunk)
                except httpx.HTTPError as exc:
                    self._last_failure = f"{type(exc).__name__}: {exc}"
                    self._give_back(chunk + [record for later in reversed(chunks) for record in later])
                    return False
                status = response.status_code
                if status >= 500 or status in RETRYABLE:
                    self._last_failure = refusal_of(response)
                    self._give_back(chunk + [record for later in reversed(chunks) for record in later])
                    return False
                if status == 413 and len(chunk) > 1:
                    # Smaller batches from now on: a server with a lower limit would refuse each one first.
                    body_bytes = sum(len(record) + 1 for record in chunk)
                    self.max_batch_bytes = max(SMALLEST_BATCH_BYTES, min(self.max_batch_bytes, body_bytes // 2))
                    half = len(chunk) // 2
                    chunks += [chunk[half:], chunk[:half]]
                elif status == 413:
                    self._drop(1, f"too large for the orchestrator even alone ({refusal_of(response)})")
                elif status >= 400:
                    self._drop(len(chunk), f"refused by the orchestrator ({refusal_of(response)})")
                else:
                    self._count_stored(chunk, response)
            return True
        except Exception as exc:
            lost = len(chunk) + sum(len(later) for later in chunks)
            self._drop(lost, f"could not be sent ({type(exc).__name__}: {exc})")
            return True
        finally:
            self._in_flight = 0

    def _post(self, client: httpx.Client, records: list[bytes]) -> httpx.Response:
        timeout = self.timeout
        if self._closing.is_set() and self._give_up_at is not None:
            timeout = max(0.05, min(timeout, self._give_up_at - time.monotonic()))
        return client.post(
            "/api/v1/logs",
            content=b'{"records":[' + b",".join(records) + b"]}",
            headers={"Content-Type": "application/json"},
            timeout=timeout,
        )

    def _count_stored(self, chunk: list[bytes], response: httpx.Response) -> None:
        try:
            answer = response.json()
            accepted, rejected = int(answer["accepted"]), list(answer["rejected"])
        except (ValueError, KeyError, TypeError):
            accepted, rejected = len(chunk), []
        self.sent += accepted
        for refused in rejected:
            error = refused.get("error", "no reason given") if isinstance(refused, dict) else refused
            self._drop(1, f"refused by the orchestrator ({str(error)[:200]})")

    def _report_drops(self, client: httpx.Client) -> bool:
        """Send the warning about records dropped since the last one; False when it has to wait for later."""
        with self._buffer_lock:
            counts = self._unreported_drops
            self._unreported_drops = Counter()
        if not counts:
            return True
        try:
            response = self._post(client, [encode_record(self._drop_notice(counts))])
        except httpx.HTTPError as exc:
            response = None
            self._last_failure = f"{type(exc).__name__}: {exc}"
        if response is None or response.status_code >= 500 or response.status_code in RETRYABLE:
            with self._buffer_lock:
                self._unreported_drops.update(counts)
            return False
        if response.status_code >= 400 and not self._complained:
            # The store refuses even the warning (a revoked token, say): stderr is the only place left to say it.
            self._complained = True
            self._say(
                f"{log_records(sum(counts.values()))} dropped so far, and more may follow: the orchestrator refuses "
                f"them ({refusal_of(response)})"
            )
        return True

    def _drop_notice(self, counts: Counter[str]) -> dict[str, Any]:
        total = sum(counts.values())
        head = f"{log_records(total)} {'was' if total == 1 else 'were'} dropped"
        if len(counts) == 1:
            why = next(iter(counts))
        else:
            why = "; ".join(f"{count} {reason}" for reason, count in counts.most_common(5))
        notice: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(),
            "level": "WARNING",
            "source": self.source,
            "message": f"{head}: {why}",
            "fields": {"logger": "robofleet.sdk", "dropped": total},
        }
        if self.run_id:
            notice["run_id"] = self.run_id
        return notice

    def _full_reason(self) -> str:
        return f"the orchestrator was unreachable and the buffer of {self.capacity} was full"

    def _drop(self, count: int, reason: str) -> None:
        with self._buffer_lock:
            self.dropped += count
            self._unreported_drops[reason] += count
            self._idle.clear()  # not idle until the warning about it is sent

    def _give_back(self, records: list[bytes]) -> None:
        with self._buffer_lock:
            room = self.capacity - len(self._buffer)
            keep = records[-room:] if room > 0 else []
            lost = len(records) - len(keep)
            if lost:
                self.dropped += lost
                self._unreported_drops[self._full_reason()] += lost
            self._buffer.extendleft(reversed(keep))

    def _write_out(self, records: list[bytes]) -> None:
        """Records never delivered, as lines of output (the run's agent stores them): `LEVEL:logger:message`."""
        for encoded in records:
            try:
                item = json.loads(encoded)
                line = f"{item['level']}:{item['fields'].get('logger', 'root')}:{item['message']}"
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            try:
                sys.stderr.write(line + "\n")
            except (OSError, ValueError):
                return
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()

    def _say(self, line: str) -> None:
        try:
            sys.stderr.write(f"robofleet: {line}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # stderr closed: nowhere left to say it


def _handlers_on_way_of(record: logging.LogRecord) -> list[logging.Handler]:
    """The handlers a record of its logger goes to, in the order logging calls them."""
    found: list[logging.Handler] = []
    logger: logging.Logger | None = logging.getLogger(record.name) if record.name != "root" else logging.root
    while logger is not None:
        found.extend(logger.handlers)
        logger = logger.parent if logger.propagate else None
    return found


def _writes_to_output(handler: logging.Handler) -> bool:
    """A stream handler that writes to this process's stdout or stderr (not a file of its own)."""
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = handler.stream
    if stream is None:
        return False
    if any(stream is standard for standard in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)):
        return True
    try:
        return stream.fileno() in (1, 2)
    except (AttributeError, OSError, ValueError):
        return False
