"""Durable writes of log rows, in the order they were submitted, by two lanes that overlap their work.

One writer doing everything in turn leaves the database idle while Python turns a batch into rows, and Python
idle while the database stores them. Here each lane takes the next batches with a ticket and does the Python
work on its own; only the steps that fix the order take turns by ticket:

- PostgreSQL: a lane reserves its blocks' numbers (and so its records' ids) in turn, copies its rows while the
  other lane works, and commits in turn. Ids are handed out and made visible in the same order, so a live tail
  that resumes after the last id it saw never skips a record committed late.
- SQLite, one writer at a time anyway: a lane writes and commits in turn; parsing the next batch overlaps it.

Either way the rows of a lane are announced (`on_written`) in ticket order, so live viewers see ids rising.
A bad batch fails alone: the others of its group are written again one by one under the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from robofleet.errors import StoreUnavailable
from robofleet.logs import blocks
from robofleet.logs.ingest import Row
from robofleet.logs.words import array_literal, indexed_words
from robofleet.store.database import Store

log = logging.getLogger(__name__)
LANES = 2
MAX_JOBS = 8  # batches per group: small enough that both lanes get some of a burst
IDLE_CHECK_SECONDS = 1.0
SQLITE_CACHE_KIB = 32_768
RECORD_COLUMNS = "id, time, level, source, run_id, message, fields, truncated"
# Binary COPY: psycopg's C dumpers are ~2x cheaper than its text rows. `fields` goes as text, which the json
# column's binary input reads as is.
RECORD_TYPES = ["int8", "timestamptz", "int2", "varchar", "varchar", "text", "text", "bool"]


@dataclass
class _Job:
    prepare: Callable[[], list[Row]]
    future: Future[list[int]] = field(default_factory=Future)
    rows: list[Row] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)  # PostgreSQL: the job's blocks
    ids: list[int] = field(default_factory=list)


class _Turns:
    """Steps that must happen in ticket order: `with turns.of(ticket):` waits for the earlier tickets."""

    def __init__(self) -> None:
        self._next = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def of(self, ticket: int) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: self._next == ticket)
        try:
            yield
        finally:
            with self._changed:
                self._next = ticket + 1
                self._changed.notify_all()


class LogWriter:
    """`submit(prepare)`: `prepare()` runs on a lane and returns rows; the future gives their ids once durable."""

    def __init__(
        self,
        store: Store,
        *,
        on_written: Callable[[list[Row], list[int]], None],
        lanes: int = LANES,
        name: str = "logs-writer",
    ) -> None:
        self.store = store
        self.on_written = on_written
        self.postgres = store.dialect == "postgresql"
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._taking = threading.Lock()
        self._tickets = 0
        self._ordered = _Turns()  # reserving ids (PostgreSQL) / writing (SQLite)
        self._settled = _Turns()  # committing (PostgreSQL) and answering
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{lane}", daemon=True) for lane in range(lanes)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, prepare: Callable[[], list[Row]]) -> Future[list[int]]:
        job = _Job(prepare)
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 10) -> None:
        """Write what is queued, then stop the lanes."""
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # ---- a lane ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        lane = _Lane(self.store)
        try:
            while True:
                with self._taking:  # jobs and tickets in the same order
                    first = self._queue.get()
                    if first is None:
                        self._queue.put(None)  # for the other lanes
                        return
                    jobs = [first]
                    while len(jobs) < MAX_JOBS:
                        try:
                            job = self._queue.get_nowait()
                        except queue.Empty:
                            break
                        if job is None:
                            self._queue.put(None)
                            break
                        jobs.append(job)
                    ticket = self._tickets
                    self._tickets += 1
                self._write(lane, ticket, jobs)
        finally:
            lane.close()

    def _write(self, lane: _Lane, ticket: int, jobs: list[_Job]) -> None:
        ready = [job for job in jobs if _prepared(job)]
        error: BaseException | None = None
        batch = "" if self.postgres else _sqlite_batch(ready)  # serialized before the turn: it takes none
        with self._ordered.of(ticket):
            try:
                if self.postgres:
                    lane.reserve(ready)
                else:
                    lane.write_sqlite(ready, batch)
            except BaseException as exc:
                error = exc
        if self.postgres and error is None:
            try:
                lane.copy(ready)
            except BaseException as exc:
                error = exc
        with self._settled.of(ticket):
            if self.postgres:
                if error is None:
                    try:
                        lane.commit()
                    except BaseException as exc:
                        error = exc
                if error is not None:
                    lane.rollback()
                    if not isinstance(_unavailable(error), StoreUnavailable) and len(ready) > 1:
                        ready = lane.one_by_one(ready, error)  # under the same numbers: still in id order
                        error = None
            elif error is not None and not isinstance(_unavailable(error), StoreUnavailable) and len(ready) > 1:
                ready = lane.one_by_one_sqlite(ready)
                error = None
            if error is not None:
                failure = _unavailable(error)
                if isinstance(failure, StoreUnavailable):
                    lane.discard()  # the driver's own errors leave SQLAlchemy's connection looking healthy
                else:
                    log.error("log rows could not be stored: %s", failure)
                for job in ready:
                    _settle(job.future, exception=failure)
                return
            self._announce(ready)

    def _announce(self, jobs: list[_Job]) -> None:
        rows: list[Row] = []
        ids: list[int] = []
        for job in jobs:
            _settle(job.future, result=job.ids)
            rows.extend(job.rows)
            ids.extend(job.ids)
        if rows:
            try:
                self.on_written(rows, ids)
            except Exception:
                log.exception("announcing new log records failed")


class _Lane:
    """A lane's own connection and the statements it runs on it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._connection: Connection | None = None
        self._transaction: Any = None
        self._last_used = 0.0

    # -- PostgreSQL: reserve in turn, copy freely, commit in turn --

    def reserve(self, jobs: list[_Job]) -> None:
        """Begin, and number each job's blocks: a block is BLOCK_ROWS records with consecutive ids."""
        connection = self._begin()
        wanted = sum(_blocks_needed(job) for job in jobs)
        if not wanted:
            return
        cursor = _raw(connection).cursor()
        with _lost(), cursor:
            cursor.execute("SELECT nextval('log_fts_block_seq') FROM generate_series(1, %s)", (wanted,))
            numbers = sorted(int(row[0]) for row in cursor.fetchall())
        for job in jobs:
            count = _blocks_needed(job)
            job.numbers, numbers = numbers[:count], numbers[count:]
            job.ids = [
                blocks.first_id(number) + place
                for number, start in zip(job.numbers, range(0, len(job.rows), blocks.BLOCK_ROWS), strict=True)
                for place in range(min(blocks.BLOCK_ROWS, len(job.rows) - start))
            ]

    def copy(self, jobs: list[_Job]) -> None:
        connection = self._connection
        assert connection is not None
        block_ids: list[int] = []
        block_words: list[str] = []
        for job in jobs:
            for number, start in zip(job.numbers, range(0, len(job.rows), blocks.BLOCK_ROWS), strict=True):
                block_ids.append(number)
                block_words.append(
                    array_literal(indexed_words(row.message for row in job.rows[start : start + blocks.BLOCK_ROWS]))
                )
        if not block_ids:
            return
        with _lost(), _raw(connection).cursor() as cursor:
            # Each block's words as one array literal: psycopg's per-element list dumping costs more than parsing.
            cursor.executemany(
                "INSERT INTO log_fts_blocks (id, words) VALUES (%s, CAST(%s AS text[]))",
                list(zip(block_ids, block_words, strict=True)),
            )
            with cursor.copy(f"COPY log_records ({RECORD_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(RECORD_TYPES)
                write_row = copy.write_row
                for job in jobs:
                    for new_id, r in zip(job.ids, job.rows, strict=True):
                        fields = orjson.dumps(r.fields).decode() if r.fields else "{}"
                        write_row((new_id, r.time, r.level, r.source, r.run_id, r.message, fields, r.truncated))

    def commit(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            with _lost():
                transaction.commit()

    def rollback(self) -> None:
        transaction, self._transaction = self._transaction, None
        with contextlib.suppress(Exception):
            if transaction is not None:
                transaction.rollback()
        if self._connection is not None and (self._connection.invalidated or self._connection.closed):
            self._drop()

    def one_by_one(self, jobs: list[_Job], error: BaseException) -> list[_Job]:
        """Each job alone in a savepoint, with the numbers it was given: a failure costs that job only. Jobs that
        got no numbers (the reservation itself failed) fail with `error`."""
        written: list[_Job] = []
        try:
            connection = self._begin()
            for job in jobs:
                if len(job.numbers) != _blocks_needed(job):
                    _settle(job.future, exception=error)
                    continue
                savepoint = connection.begin_nested()
                try:
                    self.copy([job])
                    savepoint.commit()
                    written.append(job)
                except Exception as exc:
                    savepoint.rollback()
                    _settle(job.future, exception=_unavailable(exc))
            self.commit()
        except Exception as exc:
            self.rollback()
            for job in written:
                _settle(job.future, exception=_unavailable(exc))
            return []
        return written

    # -- SQLite: the whole write in turn --

    def write_sqlite(self, jobs: list[_Job], batch: str) -> None:
        connection = self._begin()
        try:
            with _lost():
                self._insert_sqlite(connection, jobs, batch)
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def one_by_one_sqlite(self, jobs: list[_Job]) -> list[_Job]:
        written: list[_Job] = []
        for job in jobs:
            try:
                self.write_sqlite([job], _sqlite_batch([job]))
                written.append(job)
            except Exception as exc:
                _settle(job.future, exception=_unavailable(exc))
        return written

    @staticmethod
    def _insert_sqlite(connection: Connection, jobs: list[_Job], batch: str) -> None:
        count = sum(len(job.rows) for job in jobs)
        if not count:
            return
        cursor = _raw(connection).cursor()
        # The whole batch as one JSON parameter, unpacked by SQLite in one statement. `executemany` releases and
        # takes back the GIL for every row: while another thread runs Python (the other lane parsing, the event
        # loop), each take waits for its switch interval, and a batch of 4,000 rows took seconds.
        cursor.execute(
            "INSERT INTO log_records (time, level, source, run_id, message, fields, truncated) "
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
            "json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), "
            "json_extract(value, '$[6]') FROM json_each(?)",  # in array order (no ORDER BY: it adds a sort)
            (batch,),
        )
        # One statement in one write transaction with AUTOINCREMENT: the ids are contiguous, ending at the last.
        last = int(cursor.execute("SELECT last_insert_rowid()").fetchone()[0])
        first = last - count + 1
        # Indexing the batch in one statement is ~10x faster than a trigger per row.
        cursor.execute(
            "INSERT INTO log_fts(rowid, message) SELECT id, message FROM log_records WHERE id BETWEEN ? AND ?",
            (first, last),
        )
        cursor.close()
        for job in jobs:
            job.ids = list(range(first, first + len(job.rows)))
            first += len(job.rows)

    # -- the connection --

    def _begin(self) -> Connection:
        connection = self._usable()
        if self._transaction is None:
            with _lost():
                self._transaction = connection.begin()
        return connection

    def _usable(self) -> Connection:
        """The held connection; after a quiet spell it is checked first, since the database may have restarted."""
        connection = self._connection
        now = time.monotonic()
        if connection is not None and not (connection.closed or connection.invalidated):
            if now - self._last_used < IDLE_CHECK_SECONDS or self.store.alive(connection):
                self._last_used = now
                return connection
            self._drop()
        with _lost():
            self._connection = self.store.engine.connect()
            if self.store.dialect == "sqlite":
                # The log table's indexes outgrow SQLite's default 2 MB page cache within a million records;
                # a lane's own, larger cache keeps their hot pages (~20% more records/s on a full store).
                _raw(self._connection).execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        self._last_used = time.monotonic()
        return self._connection

    def discard(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()
                self._connection.close()
        self._connection = None
        self._transaction = None

    def close(self) -> None:
        self.rollback()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


def _sqlite_batch(jobs: list[_Job]) -> str:
    """The jobs' rows as one JSON array of arrays, in the text forms SQLAlchemy's SQLite DATETIME and JSON types
    read back (on this hot path their per-value processing costs more than SQLite itself)."""
    return orjson.dumps(
        [
            (
                r.time.replace(tzinfo=None).isoformat(" ", timespec="microseconds"),
                r.level,
                r.source,
                r.run_id,
                r.message,
                orjson.dumps(r.fields).decode() if r.fields else "{}",
                int(r.truncated),
            )
            for job in jobs
            for r in job.rows
        ]
    ).decode()  # text: newer SQLite reads a BLOB argument as its binary JSONB


def _blocks_needed(job: _Job) -> int:
    return -(-len(job.rows) // blocks.BLOCK_ROWS)


def _prepared(job: _Job) -> bool:
    try:
        job.rows = [_storable(row) for row in job.prepare()]
    except Exception as exc:
        log.exception("preparing log rows failed")
        _settle(job.future, exception=exc)
        return False
    return True


def _storable(row: Row) -> Row:
    """PostgreSQL text cannot hold NUL: robots print binary garbage now and then. Both stores keep U+FFFD."""
    if "\x00" in row.message:
        row.message = row.message.replace("\x00", "\ufffd")
    if "\x00" in row.source or (row.run_id is not None and "\x00" in row.run_id):
        row.source = row.source.replace("\x00", "\ufffd")
        row.run_id = row.run_id.replace("\x00", "\ufffd") if row.run_id is not None else None
    return row


def _raw(connection: Connection) -> Any:
    return connection.connection.driver_connection


@contextlib.contextmanager
def _lost() -> Iterator[None]:
    """A database that cannot be reached, through SQLAlchemy or the drivers directly, is StoreUnavailable."""
    try:
        yield
    except (OperationalError, psycopg.OperationalError, sqlite3.OperationalError) as exc:
        raise StoreUnavailable(f"the store is unavailable: {_first_line(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"the store connection was lost: {_first_line(exc)}") from exc
        raise


def _unavailable(error: BaseException) -> BaseException:
    if isinstance(error, psycopg.OperationalError | sqlite3.OperationalError | OperationalError):
        return StoreUnavailable(f"the store is unavailable: {_first_line(error)}")
    return error


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip()
    return text.splitlines()[0] if text else type(original).__name__


def _settle(future: Future[Any], *, result: Any = None, exception: BaseException | None = None) -> None:
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:  # the caller stopped waiting; the rows are stored all the same
        pass
