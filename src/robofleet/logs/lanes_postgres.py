"""PostgreSQL's log lanes: blocks numbered in turn from a pool the sequence fills, the block summaries and a
binary COPY of the records while the other lane works, the commit in turn."""

from __future__ import annotations

import collections

import orjson

from robofleet.logs.lanes import Lane, raw
from robofleet.logs.write_groups import Group, Job
from robofleet.store.database import Store, as_unavailable, unavailable_when_lost
from robofleet.store.futures import settle
from robofleet.store.held import HeldConnection

NUMBERS_TAKEN = 64  # block numbers taken from the sequence at a time (unused ones are gaps in the ids)
RECORD_COLUMNS = "id, time, level, source, run_id, message, fields, truncated"
# Binary COPY: psycopg's C dumpers are ~2x cheaper than its text rows. `fields` goes as text, which the json
# column's binary input reads as is.
RECORD_TYPES = ["int8", "timestamptz", "int2", "varchar", "varchar", "text", "text", "bool"]


class PostgresLanes:
    def __init__(self, store: Store) -> None:
        self.store = store
        # Block numbers not yet given; only touched in a lane's ordered turn, so one lane at a time.
        self.numbers: collections.deque[int] = collections.deque()

    def open(self) -> Lane:
        return PostgresLane(self.store, self.numbers)

    def close(self, timeout: float) -> None:
        return None


class PostgresLane:
    def __init__(self, store: Store, numbers: collections.deque[int]) -> None:
        self.held = HeldConnection(store)
        self.numbers = numbers

    def group(self, jobs: list[Job]) -> Group:
        return Group.of(jobs, "postgresql")

    def in_turn(self, group: Group) -> None:
        """Number the group's blocks from the pool, taking block numbers from the sequence a batch at a time: most
        turns then need no round trip to the database, and the turns are serialized."""
        need = len(group.summaries)
        if len(self.numbers) < need:
            with unavailable_when_lost(), raw(self.held.begin()).cursor() as cursor:
                cursor.execute(
                    "SELECT nextval('log_fts_block_seq') FROM generate_series(1, %s)", (max(NUMBERS_TAKEN, need),)
                )
                self.numbers.extend(sorted(int(row[0]) for row in cursor.fetchall()))  # all past what it held
        group.number([self.numbers.popleft() for _ in range(need)])

    def beside(self, group: Group) -> None:
        if not group.summaries:  # every batch of the group was refused
            return
        self._insert_blocks(group)
        self._copy_rows(group.jobs)

    def commit(self) -> None:
        self.held.commit()

    def rollback(self) -> None:
        self.held.rollback()

    def one_by_one(self, group: Group, error: BaseException) -> list[Job]:
        """The blocks, then each job alone in a savepoint, with the numbers it was given: a failure costs that job
        only (its keys stay in the block summaries: a search rechecks records anyway). When the group got no
        numbers (the reservation itself failed), every job fails with `error`."""
        if len(group.numbers) != len(group.summaries):
            for job in group.jobs:
                settle(job.future, exception=error)
            return []
        written: list[Job] = []
        try:
            connection = self.held.begin()
            self._insert_blocks(group)
            for job in group.jobs:
                savepoint = connection.begin_nested()
                try:
                    self._copy_rows([job])
                    savepoint.commit()
                    written.append(job)
                except Exception as exc:
                    savepoint.rollback()
                    settle(job.future, exception=as_unavailable(exc))
            self.held.commit()
        except Exception as exc:
            self.held.rollback()
            for job in group.jobs:
                settle(job.future, exception=as_unavailable(exc))
            return []
        return written

    def discard(self) -> None:
        self.held.drop()

    def close(self) -> None:
        self.held.rollback()
        self.held.drop()

    def _insert_blocks(self, group: Group) -> None:
        if not group.summaries:
            return
        with unavailable_when_lost(), raw(self.held.begin()).cursor() as cursor:
            # Each block's keys as one array literal: psycopg's per-element list dumping costs more than parsing.
            cursor.executemany(
                "INSERT INTO log_fts_blocks (id, words, min_time, max_time) VALUES (%s, CAST(%s AS text[]), %s, %s)",
                [
                    (number, summary.words, summary.min_time, summary.max_time)
                    for number, summary in zip(group.numbers, group.summaries, strict=True)
                ],
            )

    def _copy_rows(self, jobs: list[Job]) -> None:
        with (
            unavailable_when_lost(),
            raw(self.held.begin()).cursor() as cursor,
            cursor.copy(f"COPY log_records ({RECORD_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(RECORD_TYPES)
            write_row = copy.write_row
            for job in jobs:
                for new_id, r in zip(job.ids, job.rows, strict=True):
                    fields = orjson.dumps(r.fields).decode() if r.fields else "{}"
                    write_row((new_id, r.time, r.level, r.source, r.run_id, r.message, fields, r.truncated))
