"""SQLite's log lanes: one writer at a time anyway, so a lane numbers, writes and commits its group in its turn
(the JSON text of its rows made before); a checkpoint thread moves the write-ahead log into the database."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import orjson
from sqlalchemy import Connection

from robofleet.logs import blocks
from robofleet.logs.lanes import Lane, raw
from robofleet.logs.write_groups import Group, Job
from robofleet.store.database import Store, as_unavailable, unavailable_when_lost
from robofleet.store.futures import settle
from robofleet.store.held import HeldConnection

log = logging.getLogger(__name__)
SQLITE_CACHE_KIB = 32_768
CHECKPOINT_SECONDS = 0.5


class SqliteLanes:
    def __init__(self, store: Store, *, name: str) -> None:
        self.store = store
        self._stopping = threading.Event()
        self._checkpointer = threading.Thread(target=self._checkpoint, name=f"{name}-checkpoint", daemon=True)
        self._checkpointer.start()

    def open(self) -> Lane:
        return SqliteLane(self.store)

    def close(self, timeout: float) -> None:
        """Called after the lanes stopped: their last writes are checkpointed too."""
        self._stopping.set()
        self._checkpointer.join(timeout)

    def _checkpoint(self) -> None:
        """Move the write-ahead log into the database file, off the lanes. A lane's commit that crossed SQLite's
        automatic checkpoint threshold copied and synced megabytes while holding the write turn (~1/3 of the
        turn's time); a passive checkpoint here runs beside the writers and blocks none of them."""
        failing = False
        while not self._stopping.wait(CHECKPOINT_SECONDS):
            try:
                with self.store.engine.connect() as connection:
                    raw(connection).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except Exception as exc:  # the next round tries again; said once per spell, not twice a second
                if not failing:
                    log.warning("log store checkpoint failed, retrying every %s s: %s", CHECKPOINT_SECONDS, exc)
                failing = True
            else:
                failing = False


def _lane_settings(connection: Connection) -> None:
    # The log table's indexes outgrow SQLite's default 2 MB page cache within a million records; a lane's own,
    # larger cache keeps their hot pages (~20% more records/s on a full store).
    raw(connection).execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
    raw(connection).execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread does it


class SqliteLane:
    def __init__(self, store: Store) -> None:
        # Never given back to the pool (`HeldConnection.drop`): the lane's settings would go with it.
        self.held = HeldConnection(store, on_connect=_lane_settings)

    def group(self, jobs: list[Job]) -> Group:
        group = Group.of(jobs, "sqlite")
        group.encoded = _encoded(jobs)
        return group

    def in_turn(self, group: Group) -> None:
        """Number, write and commit the group: the whole write in turn."""
        connection = self.held.begin()
        try:
            with unavailable_when_lost():
                _insert(connection, group)
            self.held.commit()
        except BaseException:
            self.held.rollback()
            raise

    def beside(self, group: Group) -> None:
        return None

    def commit(self) -> None:
        return None  # done in turn

    def rollback(self) -> None:
        self.held.rollback()

    def one_by_one(self, group: Group, error: BaseException) -> list[Job]:
        written: list[Job] = []
        for job in group.jobs:
            try:
                self.in_turn(self.group([job]))
                written.append(job)
            except Exception as exc:
                settle(job.future, exception=as_unavailable(exc))
        return written

    def discard(self) -> None:
        self.held.drop()

    def close(self) -> None:
        self.held.rollback()
        self.held.drop()


def _insert(connection: Connection, group: Group) -> None:
    if not group.summaries:
        return
    cursor = raw(connection).cursor()
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
        (blocks.first_id(group.numbers[0]), blocks.BLOCK_ROWS, blocks.first_id(1), group.encoded),
    )
    cursor.executemany(
        "INSERT INTO log_fts_blocks (id, words, min_time, max_time) VALUES (?, ?, ?, ?)",
        [
            (number, summary.words, _sqlite_time(summary.min_time), _sqlite_time(summary.max_time))
            for number, summary in zip(group.numbers, group.summaries, strict=True)
        ],
    )
    cursor.close()


def _sqlite_time(moment: datetime) -> str:
    if moment.tzinfo is not UTC:  # rows are made in UTC; converting costs more than the formatting
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def _encoded(jobs: list[Job]) -> str:
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
