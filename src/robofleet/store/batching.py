"""Group commit: one thread applies the store operations queued by many callers in shared transactions.

A commit costs ~0.6 ms on PostgreSQL and far less on SQLite; sharing it between every operation that arrived
meanwhile is what lets hundreds of small state changes per second each be durable before they are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from robofleet.errors import StoreUnavailable
from robofleet.store.database import Store, unavailable_when_lost

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BATCH = 1000
IDLE_CHECK_SECONDS = 1.0


@dataclass
class _Job(Generic[T]):
    work: Callable[[Session], T]
    future: Future[T] = field(default_factory=Future)


class GroupCommitter:
    """Runs `work(session)` callables in order, many per transaction; each caller gets its own result."""

    def __init__(self, store: Store, *, name: str = "group-commit", linger: float = 0.0) -> None:
        """`linger`: how long to wait for more work after the first arrives; throughput for latency."""
        self.store = store
        self.linger = linger
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._connection: Connection | None = None
        self._last_used = 0.0
        self.batches = 0
        self.operations = 0

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        job: _Job[T] = _Job(work)
        self._queue.put(job)
        return job.future

    async def run(self, work: Callable[[Session], T]) -> T:
        """Queue `work` and wait until its transaction has committed."""
        return await asyncio.wrap_future(self.submit(work))

    def close(self, timeout: float = 10) -> None:
        """Finish what is queued, then stop the thread and give its connection back."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            jobs = [first]
            deadline = time.monotonic() + self.linger
            while len(jobs) < MAX_BATCH:
                try:
                    wait = deadline - time.monotonic()
                    job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                jobs.append(job)
            self._apply(jobs)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _transaction(self, jobs: list[_Job[Any]]) -> list[Any]:
        """Run the jobs in one transaction on the thread's own connection (no pool round trip per batch)."""
        try:
            with unavailable_when_lost():
                connection = self._usable_connection()
                with connection.begin(), Session(bind=connection, expire_on_commit=False) as session:
                    results = [job.work(session) for job in jobs]
                    session.flush()
                return results
        except StoreUnavailable:
            self._drop_connection()
            raise

    def _usable_connection(self) -> Connection:
        """The held connection; after a quiet spell it is checked first, since the database may have restarted
        meanwhile (a busy connection is not: its failure surfaces as StoreUnavailable, as it should)."""
        connection = self._connection
        if connection is not None and not (connection.closed or connection.invalidated):
            if time.monotonic() - self._last_used < IDLE_CHECK_SECONDS:
                self._last_used = time.monotonic()
                return connection
            if self.store.alive(connection):
                self._last_used = time.monotonic()
                return connection
            self._drop_connection()
        self._connection = self.store.engine.connect()
        self._last_used = time.monotonic()
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()
                self._connection.close()
        self._connection = None

    def _apply(self, jobs: list[_Job[Any]]) -> None:
        try:
            results = self._transaction(jobs)
        except StoreUnavailable as exc:
            for job in jobs:
                _settle(job.future, exception=exc)
            return
        except Exception as exc:
            if len(jobs) == 1:
                _settle(jobs[0].future, exception=exc)
                return
            # One bad operation must not sink the others: replay them one transaction each.
            for job in jobs:
                self._apply([job])
            return
        self.batches += 1
        self.operations += len(jobs)
        for job, result in zip(jobs, results, strict=True):
            _settle(job.future, result=result)


def _settle(future: Future[Any], *, result: Any = None, exception: BaseException | None = None) -> None:
    """A caller that stopped waiting (its task was cancelled) cancelled its future; the work was done anyway,
    and the writer thread must not die of telling nobody."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
