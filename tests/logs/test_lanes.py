"""Each store's writer lanes keep the contract of `lanes.Lane`, step by step as the writer calls them: blocks
numbered in turn (so ids follow the turns), rows durable and visible once committed, nothing left by a rollback,
and a bad batch alone failing when the group is written again one by one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from robofleet.logs import blocks
from robofleet.logs.ingest import Row
from robofleet.logs.lanes import Lane, Lanes
from robofleet.logs.lanes_postgres import PostgresLanes
from robofleet.logs.lanes_sqlite import SqliteLanes
from robofleet.logs.models import LogRecord
from robofleet.logs.write_groups import Job
from robofleet.store import Store


@pytest.fixture
def lanes(store: Store) -> Iterator[Lanes]:
    chosen: Lanes = PostgresLanes(store) if store.dialect == "postgresql" else SqliteLanes(store, name="test-lanes")
    yield chosen
    chosen.close(5)


def job(tag: str, count: int) -> Job:
    now = datetime.now(UTC)
    made = Job(lambda: [])
    made.rows = [Row(now, 20, "robot:lanes", f"run-{tag}", f"{tag} line {n}", {"n": n}, False) for n in range(count)]
    return made


def stored(store: Store) -> dict[int, str]:
    with store.connection() as connection:
        return dict(connection.execute(select(LogRecord.id, LogRecord.message)).all())


def refuse_message(store: Store, message: str) -> None:
    """The database itself refuses a record with this message (what a batch the store cannot take looks like
    once it got past Python)."""
    with store.engine.begin() as connection:
        if store.dialect == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON log_records "
                    f"WHEN new.message = '{message}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.message = '{message}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text("CREATE TRIGGER refuse BEFORE INSERT ON log_records FOR EACH ROW EXECUTE FUNCTION refuse()")
        )


def write(lane: Lane, jobs: list[Job]) -> None:
    group = lane.group(jobs)
    lane.in_turn(group)
    lane.beside(group)
    lane.commit()


def test_ids_follow_the_turns_and_committed_rows_are_stored_as_given(store: Store, lanes: Lanes) -> None:
    first, second = lanes.open(), lanes.open()
    try:
        early, late = [job("early", 1500), job("early-2", 10)], [job("late", 700)]
        group_early, group_late = first.group(early), second.group(late)
        first.in_turn(group_early)
        second.in_turn(group_late)
        second.beside(group_late)  # the later turn may do its free work first
        first.beside(group_early)
        first.commit()
        second.commit()
    finally:
        first.close()
        second.close()
    ids = [new_id for j in [*early, *late] for new_id in j.ids]
    assert ids == sorted(ids) and len(set(ids)) == 2210
    assert len(group_early.numbers) == 2 and len(group_late.numbers) == 1  # 1,510 rows fill two blocks
    assert all(blocks.block_of(new_id) in group_early.numbers for j in early for new_id in j.ids)
    expected = {new_id: row.message for j in [*early, *late] for new_id, row in zip(j.ids, j.rows, strict=True)}
    assert stored(store) == expected


def test_a_rolled_back_group_leaves_nothing_and_one_by_one_keeps_the_good_batches(store: Store, lanes: Lanes) -> None:
    refuse_message(store, "bad line 0")
    lane = lanes.open()
    try:
        good, bad, more = job("good", 30), job("bad", 1), job("more", 20)
        group = lane.group([good, bad, more])
        failure: BaseException | None = None
        try:
            lane.in_turn(group)
            lane.beside(group)
            lane.commit()
        except Exception as exc:
            failure = exc
        assert failure is not None
        lane.rollback()
        assert stored(store) == {}
        written = lane.one_by_one(group, failure)
        write(lane, [job("after", 5)])  # the lane goes on
    finally:
        lane.close()
    assert written == [good, more]
    assert bad.future.exception() is not None
    messages = stored(store)
    assert [messages[new_id] for new_id in good.ids] == [row.message for row in good.rows]
    assert [messages[new_id] for new_id in more.ids] == [row.message for row in more.rows]
    assert len(messages) == 55
