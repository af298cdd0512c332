"""Group commit: one thread applies the store operations queued by many callers in shared transactions.

A commit costs ~0.6 ms on PostgreSQL and far less on SQLite; sharing it between every operation that arrived
meanwhile is what lets hundreds of small state changes per second each be durable before they are answered.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable

from robofleet.errors import StoreUnavailable
from robofleet.store.database import Store, unavailable_when_lost
from robofleet.store.futures import settle
from robofleet.store.held import HeldConnection

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_BATCH = 1000


@dataclass
class _Job(Generic[T]):
    work: Callable[[Session], T] | None
    future: Future[T] = field(default_factory=Future)
    # Or one statement: neighbours with the same statement run as one executemany (one round of Python, not many).
    statement: Executable | None = None
    params: dict[str, Any] | None = None


class GroupCommitter:
    """Runs `work(session)` callables in order, many per transaction; each caller gets its own result."""

    def __init__(self, store: Store, *, name: str = "group-commit", linger: float = 0.0) -> None:
        """`linger`: how long to wait for more work after the first arrives; throughput for latency."""
        self.store = store
        self.linger = linger
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._held = HeldConnection(store)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.batches = 0
        self.operations = 0

    def submit(self, work: Callable[[Session], T]) -> Future[T]:
        job: _Job[T] = _Job(work)
        self._queue.put(job)
        return job.future

    def submit_statement(self, statement: Executable, params: dict[str, Any]) -> Future[None]:
        """Queue one execution of `statement` (built once, e.g. an UPDATE by id); a run of them with the same
        statement in one batch is executed as one executemany."""
        job: _Job[None] = _Job(None, statement=statement, params=params)
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
        self._held.release()

    def _transaction(self, jobs: list[_Job[Any]]) -> list[Any]:
        """Run the jobs in one transaction on the thread's own connection (no pool round trip per batch)."""
        try:
            with unavailable_when_lost():
                connection = self._held.get()
                with connection.begin(), Session(bind=connection, expire_on_commit=False) as session:
                    results = _run_all(session, jobs)
                    session.flush()
                return results
        except StoreUnavailable:
            self._held.drop()
            raise

    def _apply(self, jobs: list[_Job[Any]]) -> None:
        try:
            results = self._transaction(jobs)
        except StoreUnavailable as exc:
            for job in jobs:
                settle(job.future, exception=exc)
            return
        except Exception as exc:
            if len(jobs) == 1:
                settle(jobs[0].future, exception=exc)
                return
            # One bad operation must not sink the others: replay them one transaction each.
            for job in jobs:
                self._apply([job])
            return
        self.batches += 1
        self.operations += len(jobs)
        for job, result in zip(jobs, results, strict=True):
            settle(job.future, result=result)


def _run_all(session: Session, jobs: list[_Job[Any]]) -> list[Any]:
    """Each job's result, in order: callables one by one, runs of one statement as one executemany."""
    results: list[Any] = []
    index = 0
    while index < len(jobs):
        job = jobs[index]
        if job.work is not None:
            results.append(job.work(session))
            index += 1
            continue
        end = index
        while end < len(jobs) and jobs[end].work is None and jobs[end].statement is job.statement:
            end += 1
        assert job.statement is not None
        session.connection().execute(job.statement, [run.params or {} for run in jobs[index:end]])
        results.extend([None] * (end - index))
        index = end
    return results
