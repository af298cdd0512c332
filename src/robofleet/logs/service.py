"""The log store's operations: ingest (group-committed), search, export, live tail, retention."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from robofleet.auth.audit import record
from robofleet.auth.principal import RUN_USER, Principal, system_principal
from robofleet.errors import Forbidden, Invalid, RobofleetError
from robofleet.events import CLOSING, LAGGED, EventHub
from robofleet.logs import store_ops
from robofleet.logs.filters import Filters
from robofleet.logs.handler import StoreLogHandler
from robofleet.logs.ingest import ANYONE, Row, Sender, parse_batch
from robofleet.logs.live import HEARTBEAT, Published, log_event, ready_event
from robofleet.logs.metrics import IngestCounts
from robofleet.logs.records import RecordOut, rows_out
from robofleet.logs.writer import LogWriter
from robofleet.runtime import Loop
from robofleet.settings.model import LogsSettings
from robofleet.store import Store
from robofleet.store.base import utcnow
from robofleet.store.futures import settle
from robofleet.store.pagination import decode_cursor, encode_cursor

log = logging.getLogger(__name__)
TOPIC = "logs"
PAGE_MAX = 1000
EXPORT_CHUNK = 2000
BACKLOG_CHUNK = 500
# Stored batches a live viewer may have unread before it reads the store instead (a batch is up to a few thousand
# records: a stalled viewer must not hold them all in memory).
LIVE_BATCHES = 16
RETENTION_BATCH = 5000
MAX_ID = 2**63 - 1  # ids are BIGINT on both stores


@dataclass
class IngestResult:
    accepted: int
    rejected: list[dict[str, Any]]
    ids: list[int]


class LogService:
    def __init__(self, store: Store, settings: LogsSettings, hub: EventHub) -> None:
        self.store = store
        self.settings = settings
        self.hub = hub
        self.ingested = IngestCounts()
        self.writer = LogWriter(store, on_written=self._announce)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.retention = Loop("logs-retention", settings.housekeeping_seconds, self._retain, wait_first=True)
        self._handler: logging.Handler | None = None

    def start(self, loop: asyncio.AbstractEventLoop, *, own_logs: bool) -> None:
        """Announce new records on `loop`, run retention on it, and keep the orchestrator's own logs."""
        self.loop = loop
        self.retention.start()
        if own_logs:
            self._handler = StoreLogHandler(self.write, max_message_bytes=self.settings.max_message_bytes)
            self._handler.setLevel(self.settings.level)
            logging.getLogger().addHandler(self._handler)

    def stop(self) -> None:
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.retention.cancel)
        self.writer.close()

    # ---- writing -----------------------------------------------------------------------------------------

    @staticmethod
    def sender_of(principal: Principal) -> Sender:
        """What `principal` may send as, without a query. A robot run's own token is bound to its run (the token's
        columns, `Principal.run`) and writes as that robot and run only: a robot cannot pass its lines off as
        another's. A token bound to an agent name (`Principal.agent`) writes as agent:<that name> only, and for no
        run. A token of the run user bound to no run may send nothing. Any other caller with logs:write (a user of
        the `robot` role, say, for a robot that runs outside robofleet) sends as robot:<any name>, as no agent, and
        for no run of robofleet's (a number): its records may carry run ids of its own that are not numbers.
        logs:admin sends as anyone (the orchestrator, an agent, any run)."""
        if principal.run is not None:
            return Sender(f"robot:{principal.run.robot}", str(principal.run.run_id))
        if principal.username == RUN_USER:
            raise Forbidden("this run token belongs to no run", details={"permission": "logs:write"})
        if principal.agent is not None:
            return Sender(f"agent:{principal.agent}")
        if principal.can("logs:admin"):
            return ANYONE
        return Sender(own_run_ids=True)

    def ingest(self, body: bytes, sender: Sender = ANYONE) -> Future[IngestResult]:
        """Decode and validate a POSTed body of `{"records": [...]}` and store the good records; the future resolves
        once they are durable, or with the RobofleetError (a 4xx) the body as a whole deserves.

        Decoding and validation run on a writer lane, which overlaps them with the other lane's database work;
        the event loop, which every request needs, only reads the body."""
        now = utcnow()
        rejected: list[dict[str, Any]] = []

        def prepare() -> list[Row]:
            rows, refused = parse_batch(
                self._records_of(body), now=now, max_message_bytes=self.settings.max_message_bytes, sender=sender
            )
            rejected.extend(refused)
            return rows

        answer: Future[IngestResult] = Future()

        def stored(done: Future[list[int]]) -> None:
            error = done.exception()
            if error is not None:
                settle(answer, exception=error)
            else:
                ids = done.result()
                settle(answer, result=IngestResult(len(ids), rejected, ids))

        self.writer.submit(prepare).add_done_callback(stored)
        return answer

    def _records_of(self, body: bytes) -> list[Any]:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            decoded = _with_lone_surrogates_replaced(body)
            if decoded is None:
                try:
                    body.decode("utf-8")
                except UnicodeDecodeError as bad:
                    message = f"the body is not UTF-8 JSON: byte {bad.start} cannot be decoded (compressed? binary?)"
                    raise RobofleetError(message, code="malformed_json") from None
                raise RobofleetError(f"the body is not valid JSON: {exc}", code="malformed_json") from None
        if not isinstance(decoded, dict) or not isinstance(decoded.get("records"), list) or set(decoded) - {"records"}:
            raise Invalid('the body must be {"records": [...]}')
        records: list[Any] = decoded["records"]
        if len(records) > self.settings.max_batch:
            raise Invalid(
                f"{len(records)} records in one batch; the limit is logs.max_batch = {self.settings.max_batch}",
                details={"max_batch": self.settings.max_batch},
            )
        return records

    def write(self, rows: list[Row]) -> Future[list[int]]:
        """Queue rows for the next write; the future gives their ids once durable."""
        return self.writer.submit(lambda: rows)

    def _announce(self, rows: list[Row], ids: list[int]) -> None:
        """Called by the writer in id order, once the rows are durable."""
        self.ingested.add(rows)
        if self.loop is None or not self.hub.has_subscribers(TOPIC):
            return
        # Rendered here on a writer lane, once, not once per viewer on the event loop (`live`).
        self.loop.call_soon_threadsafe(self.hub.publish, TOPIC, {"batch": Published.of(ids, rows)})

    # ---- reading -----------------------------------------------------------------------------------------

    def search(self, filters: Filters, *, limit: int, cursor: str | None, order: str) -> dict[str, Any]:
        """A page newest first (order=desc) or oldest first (asc). `next_cursor` goes on in that order;
        `prev_cursor` gives the page before this one, in the same order (the records nearest this page's first)."""
        if not 1 <= limit <= PAGE_MAX:
            raise Invalid(f"limit must be between 1 and {PAGE_MAX}", details={"field": "limit"})
        ascending, backward, position = order == "asc", False, None
        if cursor:
            ascending, backward, position = _position_of(cursor)
        # A page back is read in the other order from its boundary, then turned round.
        reading_up = ascending != backward
        after, before = (position, None) if reading_up else (None, position)
        with self.store.connection() as connection:
            rows, resume = store_ops.fetch(
                connection, filters, after=after, before=before, ascending=reading_up, limit=limit + 1
            )
        more = len(rows) > limit
        items = rows_out(rows[:limit])
        # Where reading stopped: past the last record read, or where a search cut short by its budget got to.
        onward = items[-1]["id"] if more and items else resume
        if backward:
            items.reverse()
            earlier = onward
            later = items[-1]["id"] if items else position
        else:
            earlier = items[0]["id"] if items and cursor else None
            later = onward
        view = "a" if ascending else "d"
        return {
            "items": items,
            "next_cursor": encode_cursor(f"{view}n:{later}") if later is not None else None,
            "prev_cursor": encode_cursor(f"{view}p:{earlier}") if earlier is not None else None,
        }

    def export(self, filters: Filters, max_records: int, *, ascending: bool = True) -> Iterator[list[RecordOut]]:
        """Chunks of records, oldest first (or newest first), read a chunk at a time (never the whole result in
        memory)."""
        position: int | None = None
        sent = 0
        while sent < max_records:
            after, before = (position, None) if ascending else (None, position)
            with self.store.connection() as connection:
                rows, resume = store_ops.fetch(
                    connection,
                    filters,
                    after=after,
                    before=before,
                    ascending=ascending,
                    limit=min(EXPORT_CHUNK, max_records - sent),
                )
            if rows:
                chunk = rows_out(rows)
                yield chunk
                sent += len(chunk)
                position = chunk[-1]["id"]
            if resume is not None:
                position = resume
            elif len(rows) < EXPORT_CHUNK:
                return

    def last_id(self) -> int:
        with self.store.connection() as connection:
            return int(connection.execute(select(func.coalesce(func.max(store_ops.TABLE.c.id), 0))).scalar_one())

    async def tail(
        self,
        filters: Filters,
        after: int | None,
        is_disconnected: Callable[[], Any],
        heartbeat: float,
    ) -> AsyncIterator[str]:
        """Matching records as SSE text, as they are stored. With `after`, first every stored record past it:
        subscribing before reading the backlog, then skipping ids already sent, gives each record exactly once.
        A comment goes out after `heartbeat` seconds without output, even while records of other filters pass."""
        with self.hub.subscribe(TOPIC, buffer=LIVE_BATCHES, catches_up=True) as subscriber:
            if after is None:
                last = await asyncio.to_thread(self.last_id)
            else:
                # An id past the newest (a client of a store since reset) would wait for ids it already "has".
                last = min(after, await asyncio.to_thread(self.last_id))
                async for events, read_to in self._stored_after(filters, last):
                    last = read_to
                    if events:
                        yield events
            yield ready_event(last)
            quiet_until = time.monotonic() + heartbeat
            while True:
                try:
                    got = await asyncio.wait_for(subscriber.get(), max(0.0, quiet_until - time.monotonic()))
                except TimeoutError:
                    if await is_disconnected():
                        return
                    yield HEARTBEAT
                    quiet_until = time.monotonic() + heartbeat
                    continue
                if got is CLOSING:  # the server is stopping
                    return
                if got is LAGGED:  # a slow reader: what it missed is read from the store, none lost or repeated
                    async for events, read_to in self._stored_after(filters, last):
                        last = read_to
                        if events:
                            yield events
                    continue
                batch: Published = got[1]["batch"]
                events = batch.events_for(filters, last)
                last = max(last, batch.last_id)
                if events:
                    yield events
                    quiet_until = time.monotonic() + heartbeat
                elif time.monotonic() >= quiet_until:
                    yield HEARTBEAT
                    quiet_until = time.monotonic() + heartbeat

    async def _stored_after(self, filters: Filters, last: int) -> AsyncIterator[tuple[str, int]]:
        """The stored matching records past `last` as SSE text, a chunk at a time, each with the id read up to."""
        while True:
            rows, resume = await asyncio.to_thread(self._backlog, filters, last)
            last = resume if resume is not None else rows[-1].id if rows else last
            yield "".join(log_event(item) for item in rows_out(rows)), last
            if resume is None and len(rows) < BACKLOG_CHUNK:
                return

    def _backlog(self, filters: Filters, after: int) -> tuple[list[Any], int | None]:
        with self.store.connection() as connection:
            return store_ops.fetch(connection, filters, after=after, ascending=True, limit=BACKLOG_CHUNK)

    # ---- retention -----------------------------------------------------------------------------------------

    def housekeeping(self, now: datetime | None = None) -> dict[str, int]:
        """Delete records past `retention_days` (a block of at most 4,096 per transaction, found through the
        block summaries' time spans), then the oldest beyond `max_rows` (5,000 per transaction): writers never
        wait long."""
        now = now or utcnow()
        cutoff = now - timedelta(days=self.settings.retention_days)
        expired = 0
        after = -1
        while True:
            with self.store.transaction() as session:
                found = store_ops.blocks_older_than(session, cutoff, after)
            for block in found:
                with self.store.transaction() as session:
                    expired += store_ops.expire_block(session, block, cutoff)
            if not found:
                break
            after = found[-1]
        with self.store.transaction() as session:
            below = store_ops.id_keeping_newest(session, self.settings.max_rows)
        excess = 0
        if below is not None:
            excess = self._delete_batches(lambda session: store_ops.delete_below(session, below, RETENTION_BATCH))
        if expired or excess:
            with self.store.transaction() as session:
                store_ops.delete_emptied_blocks(session)
        if expired or excess:
            with self.store.transaction() as session:
                record(
                    session,
                    system_principal("housekeeping"),
                    "logs.retention",
                    "log_records",
                    "ok",
                    {"expired": expired, "over_max_rows": excess, "cutoff": cutoff.isoformat()},
                )
            log.info("log retention removed %d expired and %d excess records", expired, excess)
        return {"expired": expired, "over_max_rows": excess}

    def _delete_batches(self, delete: Callable[[Any], int]) -> int:
        total = 0
        while True:
            with self.store.transaction() as session:
                deleted = delete(session)
            total += deleted
            if deleted < RETENTION_BATCH:
                return total

    async def _retain(self) -> None:
        await asyncio.to_thread(self.housekeeping)


def _with_lone_surrogates_replaced(body: bytes) -> Any:
    """A body orjson refused only for escapes of lone surrogates ("\\ud800", what a robot that printed a file name
    in no valid encoding sends), decoded with those as U+FFFD, as NUL characters are: no store keeps them. None
    when the body is wrong for any other reason."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        if isinstance(value, list):
            return [clean(item) for item in value]
        if isinstance(value, dict):
            return {clean(key): clean(item) for key, item in value.items()}
        return value

    try:  # what orjson refuses besides (NaN, nesting past its limit) stays refused
        return orjson.loads(json.dumps(clean(decoded), ensure_ascii=False).encode())
    except (ValueError, RecursionError):
        return None


def _position_of(cursor: str) -> tuple[bool, bool, int]:
    """(ascending view, a page back, the boundary id) of a cursor; "a:"/"d:" are earlier releases' next cursors."""
    kind, _, position = decode_cursor(cursor).partition(":")
    if kind in ("a", "d"):
        kind += "n"
    known = kind in ("an", "ap", "dn", "dp") and position.isascii() and position.isdigit()
    if not known or int(position) > MAX_ID:
        raise Invalid("the cursor is not one this server handed out", code="invalid_cursor")
    return kind[0] == "a", kind[1] == "p", int(position)
