"""What a writer lane writes at once: the jobs it took, their rows' block summaries, and (once numbered) the
blocks' numbers, which give each row its id."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from robofleet.logs import blocks
from robofleet.logs.ingest import Row


@dataclass
class Job:
    """A submitted batch: `prepare()` runs on a lane and returns its rows; `future` gives their ids once durable."""

    prepare: Callable[[], list[Row]]
    future: Future[list[int]] = field(default_factory=Future)
    rows: list[Row] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


@dataclass
class Group:
    jobs: list[Job]
    summaries: list[blocks.Summary]
    numbers: list[int] = field(default_factory=list)
    # The rows in the form the lane sends them, made before any turn (SQLite: one JSON text; PostgreSQL: unused).
    encoded: str = ""

    @classmethod
    def of(cls, jobs: list[Job], dialect: str) -> Group:
        return cls(jobs, blocks.summarize([row for job in jobs for row in job.rows], dialect))

    @property
    def rows(self) -> int:
        return sum(len(job.rows) for job in self.jobs)

    def number(self, numbers: list[int]) -> None:
        """Give the blocks their numbers, and so each job's rows their ids (`blocks.ids_of`)."""
        self.numbers = numbers
        ids = blocks.ids_of(numbers, self.rows)
        start = 0
        for job in self.jobs:
            job.ids = ids[start : start + len(job.rows)]
            start += len(job.rows)
