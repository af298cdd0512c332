"""Durable writes of log rows, in the order they were submitted, by two lanes that overlap their work.

One writer doing everything in turn leaves the database idle while Python turns a batch into rows, and Python
idle while the database stores them. Here each lane takes the next batches with a ticket and does the Python
work on its own; only the steps that fix the order take turns by ticket:

- PostgreSQL: a lane numbers its blocks (and so its records' ids) in turn, copies its rows and block
  summaries while the other lane works, and commits in turn. Ids are handed out and made visible in the same
  order, so a live tail that resumes after the last id it saw never skips a record committed late.
- SQLite, one writer at a time anyway: a lane numbers, writes and commits in turn; parsing and summarizing the
  next batches overlaps it.

The batches a lane takes together are one write: their rows fill blocks of `blocks.BLOCK_ROWS` records, each with one
summary row (`blocks.summarize`, computed before any turn).

Either way the rows of a lane are announced (`on_written`) in ticket order, so live viewers see ids rising.
A bad batch fails alone: the others of its group are written again one by one under the same numbers.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from robofleet.errors import RobofleetError, StoreUnavailable
from robofleet.logs import blocks
from robofleet.logs.ingest import Row
from robofleet.store.database import Store, as_unavailable, unavailable_when_lost

log = logging.getLogger(__name__)
LANES = 2
MAX_JOBS = 8  # batches per group: small enough that both lanes get some of a burst
IDLE_CHECK_SECONDS = 1.0
SQLITE_CACHE_KIB = 32_768
CHECKPOINT_SECONDS = 0.5
NUMBERS_TAKEN = 64  # PostgreSQL: block numbers taken from the sequence at a time (unused ones are gaps in the ids)
RECORD_COLUMNS = "id, time, level, source, run_id, message, fields, truncated"
# Binary COPY: psycopg's C dumpers are ~2x cheaper than its text rows. `fields` goes as text, which the json
# column's binary input reads as is.
RECORD_TYPES = ["int8", "timestamptz", "int2", "varchar", "varchar", "text", "text", "bool"]


@dataclass
class _Job:
    prepare: Callable[[], list[Row]]
    future: Future[list[int]] = field(default_factory=Future)
    rows: list[Row] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


@dataclass
class _Group:
    """The jobs a lane writes together, their blocks, and (once numbered) the blocks' numbers."""

    jobs: list[_Job]
    summaries: list[blocks.Summary]
    numbers: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, jobs: list[_Job], dialect: str) -> _Group:
        return cls(jobs, blocks.summarize([row for job in jobs for row in job.rows], dialect))

    def number(self, numbers: list[int]) -> None:
        self.numbers = numbers
        ids = blocks.ids_of(numbers, sum(len(job.rows) for job in self.jobs))
        start = 0
        for job in self.jobs:
            job.ids = ids[start : start + len(job.rows)]
            start += len(job.rows)


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
        self._numbers: collections.deque[int] = collections.deque()  # PostgreSQL: block numbers not yet given
        self._settled = _Turns()  # committing (PostgreSQL) and answering
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{lane}", daemon=True) for lane in range(lanes)
        ]
        self._stopping = threading.Event()
        self._checkpointer = (
            None if self.postgres else threading.Thread(target=self._checkpoint, name=f"{name}-checkpoint", daemon=True)
        )
        for thread in [*self._threads, *([self._checkpointer] if self._checkpointer else [])]:
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
        self._stopping.set()  # after the lanes: their last writes are checkpointed too
        if self._checkpointer is not None:
            self._checkpointer.join(max(0.0, deadline - time.monotonic()))

    def _checkpoint(self) -> None:
        """SQLite: move the write-ahead log into the database file, off the lanes. A lane's commit that crossed
        SQLite's automatic checkpoint threshold copied and synced megabytes while holding the write turn (~1/3
        of the turn's time); a passive checkpoint here runs beside the writers and blocks none of them."""
        failing = False
        while not self._stopping.wait(CHECKPOINT_SECONDS):
            try:
                with self.store.engine.connect() as connection:
                    _raw(connection).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # the next round tries again; said once per spell, not twice a second
                if not failing:
                    log.warning("log store checkpoint failed, retrying every %s s: %s", CHECKPOINT_SECONDS, exc)
                failing = True
            else:
                failing = False

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
                    jobs = [first, *self._queued(MAX_JOBS - 1)]
                    ticket = self._tickets
                    self._tickets += 1
                try:
                    self._write(lane, ticket, jobs)
                except Exception as exc:  # the lane goes on: its turns were passed on by their `with` blocks
                    log.exception("writing log rows failed")
                    for job in jobs:
                        _settle(job.future, exception=exc)
        finally:
            lane.close()

    def _queued(self, most: int) -> list[_Job]:
        """Up to `most` jobs already waiting (the caller holds `_taking`)."""
        jobs: list[_Job] = []
        while len(jobs) < most:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)  # stopping: for the other lanes
                break
            jobs.append(job)
        return jobs

    def _arrived(self, ticket: int, most: int) -> list[_Job]:
        """Jobs that arrived while this lane prepared its group, if no later ticket was handed out meanwhile (so
        ids still follow the order jobs were taken in) and the other lane is busy: an idle lane waits for jobs
        holding `_taking`, and should take them itself. Groups then grow while the database is busy, instead of
        a lane starting a group of one whose fixed costs (a transaction, a commit) weigh on every record."""
        if most <= 0 or not self._taking.acquire(blocking=False):
            return []
        try:
            return self._queued(most) if self._tickets == ticket + 1 else []
        finally:
            self._taking.release()

    def _write(self, lane: _Lane, ticket: int, jobs: list[_Job]) -> None:
        # The Python work before any turn: it overlaps the other lane's database work.
        ready = [job for job in jobs if _prepared(job)]
        while more := self._arrived(ticket, MAX_JOBS - len(jobs)):
            jobs += more
            ready += [job for job in more if _prepared(job)]
        error: BaseException | None = None
        try:
            group, batch = self._grouped(ready)
        except Exception:  # what one job holds must fail that job, not stop the lane and every later ticket
            log.exception("preparing log rows failed; the batches are prepared one by one")
            ready = [job for job in ready if self._groups_alone(job)]
            group, batch = self._grouped(ready)
        with self._ordered.of(ticket):
            try:
                if self.postgres:
                    lane.reserve(group, self._numbers)
                else:
                    lane.write_sqlite(group, batch)
            except BaseException as exc:
                error = exc
        if self.postgres and error is None:
            try:
                lane.copy(group)
            except BaseException as exc:
                error = exc
        ready = group.jobs
        with self._settled.of(ticket):
            if self.postgres:
                if error is None:
                    try:
                        lane.commit()
                    except BaseException as exc:
                        error = exc
                if error is not None:
                    lane.rollback()
                    if not isinstance(as_unavailable(error), StoreUnavailable) and len(ready) > 1:
                        ready = lane.one_by_one(group, error)  # under the same numbers: still in id order
                        error = None
            elif error is not None and not isinstance(as_unavailable(error), StoreUnavailable) and len(ready) > 1:
                ready = lane.one_by_one_sqlite(ready)
                error = None
            if error is not None:
                failure = as_unavailable(error)
                if isinstance(failure, StoreUnavailable):
                    lane.discard()  # the driver's own errors leave SQLAlchemy's connection looking healthy
                else:
                    log.error("log rows could not be stored: %s", failure)
                for job in ready:
                    _settle(job.future, exception=failure)
                return
            self._announce(ready)

    def _grouped(self, jobs: list[_Job]) -> tuple[_Group, str]:
        group = _Group.of(jobs, self.store.dialect)
        return group, "" if self.postgres else _sqlite_batch(group.jobs)

    def _groups_alone(self, job: _Job) -> bool:
        try:
            self._grouped([job])
        except Exception as exc:
            _settle(job.future, exception=exc)
            return False
        return True

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

    def reserve(self, group: _Group, pool: collections.deque[int]) -> None:
        """Number the group's blocks (and so its records) from `pool`, block numbers taken from the sequence a
        batch at a time: most turns then need no round trip to the database, and the turns are serialized."""
        need = len(group.summaries)
        if len(pool) < need:
            with unavailable_when_lost(), _raw(self._begin()).cursor() as cursor:
                cursor.execute(
                    "SELECT nextval('log_fts_block_seq') FROM generate_series(1, %s)", (max(NUMBERS_TAKEN, need),)
                )
                pool.extend(sorted(int(row[0]) for row in cursor.fetchall()))  # all past what the pool held
        group.number([pool.popleft() for _ in range(need)])

    def copy(self, group: _Group) -> None:
        if not group.summaries:  # every batch of the group was refused
            return
        self._begin()
        self.insert_blocks(group)
        self.copy_rows(group.jobs)

    def insert_blocks(self, group: _Group) -> None:
        if not group.summaries:
            return
        assert self._connection is not None
        with unavailable_when_lost(), _raw(self._connection).cursor() as cursor:
            # Each block's keys as one array literal: psycopg's per-element list dumping costs more than parsing.
            cursor.executemany(
                "INSERT INTO log_fts_blocks (id, words, min_time, max_time) VALUES (%s, CAST(%s AS text[]), %s, %s)",
                [
                    (number, summary.words, summary.min_time, summary.max_time)
                    for number, summary in zip(group.numbers, group.summaries, strict=True)
                ],
            )

    def copy_rows(self, jobs: list[_Job]) -> None:
        assert self._connection is not None
        with (
            unavailable_when_lost(),
            _raw(self._connection).cursor() as cursor,
            cursor.copy(f"COPY log_records ({RECORD_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(RECORD_TYPES)
            write_row = copy.write_row
            for job in jobs:
                for new_id, r in zip(job.ids, job.rows, strict=True):
                    fields = orjson.dumps(r.fields).decode() if r.fields else "{}"
                    write_row((new_id, r.time, r.level, r.source, r.run_id, r.message, fields, r.truncated))

    def commit(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            with unavailable_when_lost():
                transaction.commit()

    def rollback(self) -> None:
        transaction, self._transaction = self._transaction, None
        with contextlib.suppress(Exception):
            if transaction is not None:
                transaction.rollback()
        if self._connection is not None and (self._connection.invalidated or self._connection.closed):
            self._drop()

    def one_by_one(self, group: _Group, error: BaseException) -> list[_Job]:
        """The blocks, then each job alone in a savepoint, with the numbers it was given: a failure costs that job
        only (its keys stay in the block summaries: a search rechecks records anyway). When the group got no
        numbers (the reservation itself failed), every job fails with `error`."""
        if len(group.numbers) != len(group.summaries):
            for job in group.jobs:
                _settle(job.future, exception=error)
            return []
        written: list[_Job] = []
        try:
            connection = self._begin()
            self.insert_blocks(group)
            for job in group.jobs:
                savepoint = connection.begin_nested()
                try:
                    self.copy_rows([job])
                    savepoint.commit()
                    written.append(job)
                except Exception as exc:
                    savepoint.rollback()
                    _settle(job.future, exception=as_unavailable(exc))
            self.commit()
        except Exception as exc:
            self.rollback()
            for job in group.jobs:
                _settle(job.future, exception=as_unavailable(exc))
            return []
        return written

    # -- SQLite: the whole write in turn --

    def write_sqlite(self, group: _Group, batch: str) -> None:
        connection = self._begin()
        try:
            with unavailable_when_lost():
                self._insert_sqlite(connection, group, batch)
            self.commit()
        except BaseException:
            self.rollback()
            raise

    def one_by_one_sqlite(self, jobs: list[_Job]) -> list[_Job]:
        written: list[_Job] = []
        for job in jobs:
            try:
                self.write_sqlite(_Group.of([job], "sqlite"), _sqlite_batch([job]))
                written.append(job)
            except Exception as exc:
                _settle(job.future, exception=as_unavailable(exc))
        return written

    @staticmethod
    def _insert_sqlite(connection: Connection, group: _Group, batch: str) -> None:
        if not group.summaries:
            return
        cursor = _raw(connection).cursor()
        # AUTOINCREMENT keeps the largest id ever stored: the next block starts past it, even after retention.
        (top,) = cursor.execute("SELECT max(seq) FROM sqlite_sequence WHERE name = 'log_records'").fetchone()
        first = blocks.block_of(int(top or 0)) + 1
        group.number(list(range(first, first + len(group.summaries))))
        # The whole write as one JSON parameter, unpacked by SQLite in one statement. `executemany` releases and
        # takes back the GIL for every row: while another thread runs Python (the other lane parsing, the event
        # loop), each take waits for its switch interval, and a write of 4,000 rows took seconds. Blocks are
        # numbered consecutively and filled in order: row i goes to block first + i / BLOCK_ROWS (`blocks.ids_of`).
        cursor.execute(
            "INSERT INTO log_records (id, time, level, source, run_id, message, fields, truncated) "
            "SELECT ?1 + (key / ?2) * ?3 + key % ?2, json_extract(value, '$[0]'), json_extract(value, '$[1]'), "
            "json_extract(value, '$[2]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
            "json_extract(value, '$[5]'), json_extract(value, '$[6]') "
            "FROM json_each(?4)",  # in array order (an ORDER BY would add a sort)
            (blocks.first_id(group.numbers[0]), blocks.BLOCK_ROWS, blocks.first_id(1), batch),
        )
        cursor.executemany(
            "INSERT INTO log_fts_blocks (id, words, min_time, max_time) VALUES (?, ?, ?, ?)",
            [
                (number, summary.words, _sqlite_time(summary.min_time), _sqlite_time(summary.max_time))
                for number, summary in zip(group.numbers, group.summaries, strict=True)
            ],
        )
        cursor.close()

    # -- the connection --

    def _begin(self) -> Connection:
        connection = self._usable()
        if self._transaction is None:
            with unavailable_when_lost():
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
        with unavailable_when_lost():
            self._connection = self.store.engine.connect()
            if self.store.dialect == "sqlite":
                # The log table's indexes outgrow SQLite's default 2 MB page cache within a million records;
                # a lane's own, larger cache keeps their hot pages (~20% more records/s on a full store).
                _raw(self._connection).execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                _raw(self._connection).execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread does it
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
        self._drop()  # not back to the pool: the lane's pragmas (no automatic checkpoint) would go with it


def _sqlite_time(moment: datetime) -> str:
    if moment.tzinfo is not UTC:  # rows are made in UTC; converting costs more than the formatting
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def _sqlite_batch(jobs: list[_Job]) -> str:
    """The jobs' rows as one JSON array of arrays, in the text forms SQLAlchemy's SQLite DATETIME and JSON types
    read back (on this hot path their per-value processing costs more than SQLite itself)."""
    times: dict[datetime, str] = {}  # a batch's records often share a time (when received)
    return orjson.dumps(
        [
            (
                times.get(r.time) or times.setdefault(r.time, _sqlite_time(r.time)),
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


def _prepared(job: _Job) -> bool:
    try:
        job.rows = [_storable(row) for row in job.prepare()]
    except RobofleetError as exc:  # what the caller sent is wrong: the caller is told
        _settle(job.future, exception=exc)
        return False
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


def _settle(future: Future[Any], *, result: Any = None, exception: BaseException | None = None) -> None:
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:  # the caller stopped waiting; the rows are stored all the same
        pass
