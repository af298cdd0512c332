"""Durable writes of log rows, in the order they were submitted, by two lanes that overlap their work.

One writer doing everything in turn leaves the database idle while Python turns a batch into rows, and Python
idle while the database stores them. Here each lane takes the next batches with a ticket and does the Python
work on its own; only the steps that fix the order take turns by ticket:

- PostgreSQL: a lane numbers its blocks (and so its records' ids) in turn, copies its rows and block
  summaries while the other lane works, and commits in turn. Ids are handed out and made visible in the same
  order, so a live tail that resumes after the last id it saw never skips a record committed late.
- SQLite, one writer at a time anyway: a lane numbers, writes and commits in turn; parsing and summarizing the
  next batches overlaps it.

This module keeps the order (tickets, turns) and the failures; each store's steps are a `lanes.Lane`
(`lanes_postgres`, `lanes_sqlite`), chosen once, when the writer is made.

The batches a lane takes together are one write: their rows fill blocks of `blocks.BLOCK_ROWS` records, each with one
summary row (`blocks.summarize`, computed before any turn).

Either way the rows of a lane are announced (`on_written`) in ticket order, so live viewers see ids rising.
A bad batch fails alone: the others of its group are written again one by one under the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future

from robofleet.errors import RobofleetError, StoreUnavailable
from robofleet.logs.ingest import Row
from robofleet.logs.lanes import Lane, Lanes
from robofleet.logs.lanes_postgres import PostgresLanes
from robofleet.logs.lanes_sqlite import SqliteLanes
from robofleet.logs.write_groups import Group, Job
from robofleet.store.database import Store, as_unavailable
from robofleet.store.futures import settle

log = logging.getLogger(__name__)
LANES = 2
MAX_JOBS = 8  # batches per group: small enough that both lanes get some of a burst
STALLED_SECONDS = 3.0  # a group's write takes milliseconds; this long without an answer, the store is not answering
JOIN_SLICE_SECONDS = 0.1


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
        self._lanes: Lanes = PostgresLanes(store) if store.dialect == "postgresql" else SqliteLanes(store, name=name)
        self._queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._taking = threading.Lock()
        self._tickets = 0
        self._ordered = _Turns()  # numbering (and on SQLite writing)
        self._settled = _Turns()  # committing and answering
        self._progress = time.monotonic()  # a lane took jobs or finished a write: how `close` tells a hung store
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{lane}", daemon=True) for lane in range(lanes)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, prepare: Callable[[], list[Row]]) -> Future[list[int]]:
        job = Job(prepare)
        self._queue.put(job)
        return job.future

    def close(self, timeout: float = 10, *, stalled: float = STALLED_SECONDS) -> None:
        """Write what is queued, then stop the lanes. Gives up after `timeout`, or sooner when a write has gone
        `stalled` seconds without an answer: a store that stopped answering mid-statement (a frozen server, a
        network that drops packets) would otherwise hold the process's stop for as long as TCP takes to notice.
        The lanes are daemon threads: what they still hold is lost with the process, and said so on stderr."""
        self._queue.put(None)
        # The stall clock starts at the stop at the earliest: a writer that was idle for a while has not stalled.
        self._progress = max(self._progress, time.monotonic())
        deadline = time.monotonic() + timeout
        while any(thread.is_alive() for thread in self._threads):
            now = time.monotonic()
            if now >= deadline or now - self._progress >= stalled:
                log.error(
                    "log writes did not finish (no answer from the store for %.1f s); the records still queued "
                    "are not stored",
                    now - self._progress,
                )
                self._lanes.close(0)  # the lanes' helpers (SQLite's checkpoints) stop all the same
                return
            for thread in self._threads:
                thread.join(JOIN_SLICE_SECONDS)
        self._lanes.close(max(0.0, deadline - time.monotonic()))

    # ---- a lane ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        lane = self._lanes.open()
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
                self._progress = time.monotonic()
                try:
                    self._write(lane, ticket, jobs)
                except Exception as exc:  # the lane goes on: its turns were passed on by their `with` blocks
                    log.exception("writing log rows failed")
                    for job in jobs:
                        settle(job.future, exception=exc)
                self._progress = time.monotonic()
        finally:
            lane.close()

    def _queued(self, most: int) -> list[Job]:
        """Up to `most` jobs already waiting (the caller holds `_taking`)."""
        jobs: list[Job] = []
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

    def _arrived(self, ticket: int, most: int) -> list[Job]:
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

    def _write(self, lane: Lane, ticket: int, jobs: list[Job]) -> None:
        # The Python work before any turn: it overlaps the other lane's database work.
        ready = [job for job in jobs if _prepared(job)]
        while more := self._arrived(ticket, MAX_JOBS - len(jobs)):
            jobs += more
            ready += [job for job in more if _prepared(job)]
        error: BaseException | None = None
        try:
            group = lane.group(ready)
        except Exception:  # what one job holds must fail that job, not stop the lane and every later ticket
            log.exception("preparing log rows failed; the batches are prepared one by one")
            group = lane.group([job for job in ready if _groups_alone(lane, job)])
        with self._ordered.of(ticket):
            try:
                lane.in_turn(group)
            except BaseException as exc:
                error = exc
        if error is None:
            try:
                lane.beside(group)
            except BaseException as exc:
                error = exc
        with self._settled.of(ticket):
            self._commit_and_answer(lane, group, error)

    def _commit_and_answer(self, lane: Lane, group: Group, error: BaseException | None) -> None:
        """In ticket order: commit, or fail, and answer the jobs; a bad batch fails alone."""
        written = group.jobs
        if error is None:
            try:
                lane.commit()
            except BaseException as exc:
                error = exc
        if error is not None:
            lane.rollback()
            if not isinstance(as_unavailable(error), StoreUnavailable) and len(written) > 1:
                written = lane.one_by_one(group, error)  # under the same numbers: still in id order
                error = None
        if error is not None:
            failure = as_unavailable(error)
            if isinstance(failure, StoreUnavailable):
                lane.discard()  # the driver's own errors leave SQLAlchemy's connection looking healthy
            else:
                log.error("log rows could not be stored: %s", failure)
            for job in written:
                settle(job.future, exception=failure)
            return
        self._announce(written)

    def _announce(self, jobs: list[Job]) -> None:
        rows: list[Row] = []
        ids: list[int] = []
        for job in jobs:
            settle(job.future, result=job.ids)
            rows.extend(job.rows)
            ids.extend(job.ids)
        if rows:
            try:
                self.on_written(rows, ids)
            except Exception:
                log.exception("announcing new log records failed")


def _groups_alone(lane: Lane, job: Job) -> bool:
    try:
        lane.group([job])
    except Exception as exc:
        settle(job.future, exception=exc)
        return False
    return True


def _prepared(job: Job) -> bool:
    try:
        job.rows = [_storable(row) for row in job.prepare()]
    except RobofleetError as exc:  # what the caller sent is wrong: the caller is told
        settle(job.future, exception=exc)
        return False
    except Exception as exc:
        log.exception("preparing log rows failed")
        settle(job.future, exception=exc)
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
