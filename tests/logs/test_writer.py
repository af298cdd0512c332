"""The log writer's two lanes on both stores: ids handed out, made visible and announced in one order (a reader
that resumes after the last id it saw never skips one), a bad batch failing alone, and a lost connection
costing only the batch in flight."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, wait
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from robofleet.errors import StoreUnavailable
from robofleet.logs.ingest import Row
from robofleet.logs.models import LogRecord
from robofleet.logs.writer import LogWriter
from robofleet.store import Store


def rows(tag: str, count: int) -> list[Row]:
    now = datetime.now(UTC)
    return [Row(now, 20, "robot:writer", f"run-{tag}", f"{tag} line {n} invoice", {}, False) for n in range(count)]


def stored_ids(store: Store) -> list[int]:
    with store.connection() as connection:
        return list(connection.execute(select(LogRecord.id).order_by(LogRecord.id)).scalars())


def test_ids_are_visible_and_announced_in_the_order_they_were_given(store: Store) -> None:
    announced: list[int] = []
    writer = LogWriter(store, on_written=lambda _rows, ids: announced.extend(ids))
    seen: list[int] = []
    done = threading.Event()

    def tail() -> None:  # what a live tail's backlog query does: everything after the last id it saw
        last = 0
        while True:
            finished = done.is_set()
            with store.connection() as connection:
                new = list(
                    connection.execute(select(LogRecord.id).where(LogRecord.id > last).order_by(LogRecord.id)).scalars()
                )
            if new:
                seen.extend(new)
                last = new[-1]
            elif finished:
                return

    reader = threading.Thread(target=tail)
    reader.start()
    futures: list[Future[list[int]]] = []
    lock = threading.Lock()

    def sender(name: str) -> None:
        for batch in range(25):
            future = writer.submit(lambda batch=batch: rows(f"{name}-{batch}", 40 + batch % 7 * 30))
            with lock:
                futures.append(future)

    senders = [threading.Thread(target=sender, args=(f"s{n}",)) for n in range(6)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    wait(futures, timeout=60)
    done.set()
    reader.join(60)
    writer.close()

    given = sorted(new_id for future in futures for new_id in future.result())
    assert len(given) == len(set(given)) == sum(40 + b % 7 * 30 for b in range(25)) * 6
    assert stored_ids(store) == given
    assert seen == given, "a reader resuming after its last id skipped records committed late"
    assert announced == given, "records were announced out of id order"
    for future in futures:  # each batch's ids in its own order
        assert future.result() == sorted(future.result())


def test_a_bad_batch_fails_alone_and_nul_characters_are_kept_as_replacement(store: Store) -> None:
    writer = LogWriter(store, on_written=lambda _rows, _ids: None)
    bad_row = rows("bad", 1)[0]
    bad_row.message = object()  # type: ignore[assignment]  # no driver can store this
    try:
        good = [writer.submit(lambda n=n: rows(f"good{n}", 50)) for n in range(6)]
        bad = writer.submit(lambda: [bad_row])
        broken = writer.submit(lambda: (_ for _ in ()).throw(RuntimeError("a caller's bug")))
        more = [writer.submit(lambda n=n: rows(f"more{n}", 50)) for n in range(6)]
        nul = writer.submit(lambda: [Row(datetime.now(UTC), 20, "robot:w", None, "a\x00b", {}, False)])
        wait([*good, bad, broken, *more, nul], timeout=60)
    finally:
        writer.close()
    assert bad.exception() is not None and not isinstance(bad.exception(), StoreUnavailable)
    assert isinstance(broken.exception(), RuntimeError)
    written = sorted(new_id for future in [*good, *more] for new_id in future.result())
    assert len(written) == 600
    with store.connection() as connection:
        messages = dict(connection.execute(select(LogRecord.id, LogRecord.message)).all())
    assert messages[nul.result()[0]] == "a\ufffdb"
    assert sorted(messages) == sorted([*written, nul.result()[0]])


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_connections_killed_by_the_server_cost_at_most_the_batch_in_flight(store: Store) -> None:
    writer = LogWriter(store, on_written=lambda _rows, _ids: None)
    try:
        assert len(writer.submit(lambda: rows("before", 10)).result(30)) == 10
        with store.connection() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        outcomes = []
        for attempt in range(4):  # each lane may find its connection dead once; the one after works
            future = writer.submit(lambda attempt=attempt: rows(f"after{attempt}", 10))
            wait([future], timeout=30)
            outcomes.append(future.exception())
        assert all(outcome is None or isinstance(outcome, StoreUnavailable) for outcome in outcomes)
        assert outcomes[-1] is None
        time.sleep(1.2)  # a quiet spell: the held connections are checked before use
        assert len(writer.submit(lambda: rows("later", 10)).result(30)) == 10
    finally:
        writer.close()


def test_a_stop_after_a_quiet_spell_still_writes_what_was_queued(store: Store) -> None:
    """The stall clock measures a write without an answer, not a writer with nothing to do: a stop after a quiet
    spell longer than it writes the records submitted just before."""
    writer = LogWriter(store, on_written=lambda _rows, _ids: None)
    time.sleep(0.5)  # quiet, longer than the stall allowed below
    futures = [writer.submit(lambda n=n: rows(f"last-{n}", 200)) for n in range(20)]
    writer.close(stalled=0.3)
    assert all(future.done() and future.exception() is None for future in futures)
    assert len(stored_ids(store)) == 20 * 200
