"""The block summaries as the log table's one secondary index, on both stores (`store_url` runs each test on
SQLite and PostgreSQL): every filter that narrows the blocks (words, an exact source, a run id, a minimum level,
a time range) finds exactly what the live tail's in-memory rule finds; migration 0009 summarizes records stored
before it, both ways; retention by age expires records block by block and narrows or drops their summaries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import bindparam, inspect, select, text

from robofleet.events import EventHub
from robofleet.logs import blocks
from robofleet.logs.filters import Filters
from robofleet.logs.ingest import Row
from robofleet.logs.service import PAGE_MAX, LogService
from robofleet.logs.words import LEVEL_STEPS, contains_all
from robofleet.settings.model import LogsSettings, Settings
from robofleet.store import Store
from robofleet.store.base import UTCDateTime
from robofleet.store.migrate import alembic_config, upgrade
from tests.conftest import STORES, PgServer, skip_or_fail

# Every time is fixed, so that the data set, and which blocks a time range selects, never change.
T0 = datetime(2026, 3, 1, tzinfo=UTC)
Stored = dict[int, Row]  # what was written, by id: the expected answers are computed from it


# ---- helpers shared by the tests --------------------------------------------------------------------------


def matches(filters: Filters, row: Row) -> bool:
    """The live tail's rule (`Filters.matches`): the store must answer exactly the same."""
    return filters.matches(row)


def expected_ids(stored: Stored, filters: Filters) -> list[int]:
    return sorted(record_id for record_id, row in stored.items() if matches(filters, row))


def walk(service: LogService, filters: Filters, order: str, limit: int, most_pages: int) -> list[int]:
    """Every page's ids, following `next_cursor` to its end (a cursor that never ends fails instead of hanging)."""
    seen: list[int] = []
    cursor = None
    for _ in range(most_pages):
        page = service.search(filters, limit=limit, cursor=cursor, order=order)
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen
    raise AssertionError(f"still a next_cursor after {most_pages} pages of {limit} ({filters}, {order})")


def page_sizes(count: int) -> tuple[int, int]:
    """Small pages (many page boundaries) where that stays quick, larger ones for broad filters."""
    return (7 if count <= 200 else 100), (100 if count <= 1000 else PAGE_MAX)


def assert_found_exactly(
    service: LogService, stored: Stored, filters: Filters, pages: tuple[int, int] | None = None
) -> list[int]:
    """Both orders, page by page (`pages`: the page sizes newest first, oldest first), and the export: exactly
    the matching ids, in order, each once."""
    expected = expected_ids(stored, filters)
    small, large = pages or page_sizes(len(expected))
    newest_first = walk(service, filters, "desc", small, len(expected) // small + 3)
    assert newest_first == expected[::-1], f"desc, pages of {small}: {filters}"
    oldest_first = walk(service, filters, "asc", large, len(expected) // large + 3)
    assert oldest_first == expected, f"asc, pages of {large}: {filters}"
    exported = [item["id"] for chunk in service.export(filters, 1_000_000) for item in chunk]
    assert exported == expected, f"export: {filters}"
    first_few = [item["id"] for chunk in service.export(filters, 5) for item in chunk]
    assert first_few == expected[:5], f"export of 5: {filters}"
    return expected


def stored_keys(value: Any) -> set[str]:
    """A block's keys as stored: a text[] on PostgreSQL, space-separated text on SQLite."""
    return set(value) if isinstance(value, list) else set(value.split(" "))


@dataclass(frozen=True)
class BlockRow:
    keys: frozenset[str]
    min_time: datetime
    max_time: datetime


def block_rows(store: Store) -> dict[int, BlockRow]:
    with store.connection() as connection:
        found = connection.execute(select(blocks.BLOCKS)).all()
    return {row.id: BlockRow(frozenset(stored_keys(row.words)), row.min_time, row.max_time) for row in found}


def assert_summaries_describe_their_records(store: Store, stored: Stored) -> None:
    """One summary per block holding records, with the keys and the time span of exactly its records."""
    by_block: dict[int, list[Row]] = {}
    for record_id in sorted(stored):
        by_block.setdefault(blocks.block_of(record_id), []).append(stored[record_id])
    summaries = block_rows(store)
    assert sorted(summaries) == sorted(by_block)
    for number, rows in by_block.items():
        times = [row.time for row in rows]
        assert summaries[number] == BlockRow(frozenset(blocks.keys_of(rows)), min(times), max(times)), number


def may_hold(rows: list[Row], filters: Filters) -> bool:
    """Whether a block of these records must be a candidate: each filter is met by some record of it (a minimum
    level by the step it reaches: the keys are ~l10..~l50), and its time span reaches into the range."""
    times = [row.time for row in rows]
    if filters.since is not None and max(times) < filters.since:
        return False
    if filters.until is not None and min(times) >= filters.until:
        return False
    if not all(any(contains_all(row.message, [word]) for row in rows) for word in filters.words):
        return False
    if filters.run_id is not None and all(row.run_id != filters.run_id for row in rows):
        return False
    exact_source = filters.source and not any(char in filters.source for char in "*?")
    if exact_source and all(row.source != filters.source for row in rows):
        return False
    steps = [step for step in LEVEL_STEPS if step <= (filters.min_level or 0)]
    return not steps or any(row.level >= steps[-1] for row in rows)


# ---- 1. every filter that narrows the blocks, against the in-memory rule ----------------------------------

SOURCES = ["robot:billing", "robot:b_x", "robot:crm", "robot:hr", "robot:ops", "agent:pc-01", "agent:pc-02"]
SOURCES += ["orchestrator", "robot:sales"]
RARE_SOURCE = "robot:rare"
RUN_IDS = [None, None, None, None, None, "run-1", "run-2", "run-3"]
RARE_RUN = "run-rare"
ONE_BATCH_RUN = "run-once"
COMMON_WORDS = ["invoice", "ledger", "portal", "login", "customer", "Zürich", "snake_case", "export", "sync", "mail"]
RARE_WORD = "kraken"
LEVELS = [5, 10, 15, 20, 30, 35, 40]  # odd ones too; 50 only in the "rare" batches
LEVEL_WEIGHTS = [3, 75, 2, 10, 5, 3, 2]


@dataclass(frozen=True)
class Batch:
    size: int
    day: int  # most records fall on this day after T0
    other_day: int | None = None  # a tenth on this one: a write mixing old and new times
    rare: bool = False  # the only batches with the rare source, run id, word and level 50


# Sizes from 1 to 5,000: several writes span two 4,096-id blocks, one fills a block exactly.
BATCHES = [
    Batch(1, 0),
    Batch(4096, 0, other_day=3),
    Batch(4500, 1, rare=True),
    Batch(3, 1),
    Batch(250, 2, other_day=0, rare=True),
    Batch(4097, 2),
    Batch(17, 3),
    Batch(1, 3, rare=True),
    Batch(300, 4, other_day=1),
    Batch(2, 5),
    Batch(60, 5, rare=True),
    Batch(500, 6),
]
# Written together without waiting: a lane may take them as one write, sharing blocks.
BURST = [Batch(5, 6), Batch(9, 6, rare=True), Batch(3, 6)]


def make_rows(batch: Batch, chooser: random.Random, run_of_batch: str | None) -> list[Row]:
    made = []
    for _ in range(batch.size):
        on_other_day = batch.other_day is not None and chooser.random() < 0.1
        day = batch.other_day if on_other_day and batch.other_day is not None else batch.day
        moment = T0 + timedelta(days=day, seconds=chooser.randrange(86_400), microseconds=chooser.randrange(10**6))
        level = chooser.choices(LEVELS, LEVEL_WEIGHTS)[0]
        source = chooser.choice(SOURCES)
        run_id = chooser.choice([*RUN_IDS, run_of_batch])
        words = chooser.sample(COMMON_WORDS, 2)
        if batch.rare:
            # Apart from one another, so that combining two rare filters matches nothing.
            rare = chooser.randrange(60)
            if rare == 0:
                source = RARE_SOURCE
            elif rare == 1:
                run_id = RARE_RUN
            elif rare == 2:
                words.append(RARE_WORD)
            elif rare == 3:
                level = 50
        made.append(
            Row(moment, level, source, run_id, f"step {chooser.randrange(10**6)} " + " ".join(words), {}, False)
        )
    return made


def write_data_set(service: LogService) -> Stored:
    chooser = random.Random(20260301)
    stored: Stored = {}
    for number, batch in enumerate(BATCHES):
        rows = make_rows(batch, chooser, ONE_BATCH_RUN if number == 8 else None)
        stored.update(zip(service.write(rows).result(), rows, strict=True))
    pending = [(rows, service.write(rows)) for rows in (make_rows(batch, chooser, None) for batch in BURST)]
    for rows, future in pending:
        stored.update(zip(future.result(), rows, strict=True))
    return stored


@dataclass
class Written:
    store: Store
    service: LogService
    stored: Stored


@pytest.fixture(scope="module", params=STORES)
def written(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, pg_server: PgServer | None
) -> Iterator[Written]:
    """One data set per store for every filter case: writing it costs more than checking a filter."""
    data_dir: Path = tmp_path_factory.mktemp("block-filters")
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{data_dir / 'robofleet.db'}"
        else:
            if pg_server is None:
                skip_or_fail("no server at 127.0.0.1:5432 and no local PostgreSQL binaries")
                raise AssertionError("unreachable")
            url = stack.enter_context(pg_server.database())
        settings = Settings(store={"url": url, "data_dir": data_dir})
        store = Store(settings.store)
        stack.callback(store.dispose)
        upgrade(store.engine)
        service = LogService(store, LogsSettings(), EventHub())
        stack.callback(service.stop)
        yield Written(store, service, write_data_set(service))


def test_the_data_set_exercises_the_blocks(written: Written) -> None:
    """The cases below prove something only if writes span blocks and rare things sit in a few blocks only."""
    ids = sorted(written.stored)
    assert len(ids) == sum(batch.size for batch in BATCHES + BURST)
    block_count = len({blocks.block_of(record_id) for record_id in ids})
    assert block_count >= 12
    rare_blocks = {blocks.block_of(i) for i, row in written.stored.items() if row.source == RARE_SOURCE}
    assert 2 <= len(rare_blocks) < block_count / 2
    assert_summaries_describe_their_records(written.store, written.stored)


D = timedelta(days=1)
FILTER_CASES: dict[str, Filters] = {
    "run_id": Filters(run_id="run-1"),
    "rare run_id": Filters(run_id=RARE_RUN),
    "run_id of one batch": Filters(run_id=ONE_BATCH_RUN),
    "exact source": Filters(source="robot:crm"),
    "rare source": Filters(source=RARE_SOURCE),
    "source with an underscore": Filters(source="robot:b_x"),
    "glob source": Filters(source="robot:b*"),
    "glob with a literal underscore": Filters(source="robot:b_*"),
    "glob with ?": Filters(source="agent:pc-0?"),
    "glob and min_level 5 (below every step)": Filters(source="agent:*", min_level=5),
    "min_level 15": Filters(min_level=15),
    "min_level 30": Filters(min_level=30),
    "min_level 35": Filters(min_level=35),
    "min_level 45": Filters(min_level=45),
    "min_level 50": Filters(min_level=50),
    "since": Filters(since=T0 + 5 * D),
    "until": Filters(until=T0 + D / 2),
    "since and until": Filters(since=T0 + 2.5 * D, until=T0 + 4 * D),
    "six hours": Filters(since=T0 + 3 * D + timedelta(hours=6), until=T0 + 3 * D + timedelta(hours=12)),
    "common word": Filters(text="invoice"),
    "rare word": Filters(text=RARE_WORD),
    "text and run_id": Filters(text="ledger", run_id="run-2"),
    "text, min_level and time range": Filters(text="zürich portal", min_level=35, since=T0 + D, until=T0 + 5 * D),
    "glob and min_level": Filters(source="robot:b*", min_level=35),
    "glob, text and since": Filters(source="robot:b*", text="snake_case", since=T0 + 4 * D),
    "exact source, run_id and until": Filters(source="robot:billing", run_id="run-3", until=T0 + 3 * D),
    "rare source and min_level 40": Filters(source=RARE_SOURCE, min_level=40),
    "min_level 50 and until": Filters(min_level=50, until=T0 + 2 * D),  # of the rare batches, days 0 and 1
    "visible to a reader scoped to some robots": Filters(visible=("robot:b*", "robot:crm")),
    "visible, with text and a source": Filters(visible=("robot:b*",), text="invoice", source="robot:b_x"),
}
NOTHING_CASES: dict[str, Filters] = {
    "unknown run_id": Filters(run_id="run-never"),
    "unknown source": Filters(source="robot:never"),
    "unknown word": Filters(text="nowhere"),
    "rare source and rare run_id": Filters(source=RARE_SOURCE, run_id=RARE_RUN),
    "rare word and rare source": Filters(text=RARE_WORD, source=RARE_SOURCE),
    "after every record": Filters(since=T0 + 30 * D),
    "before every record": Filters(until=T0),
    "an empty time range": Filters(since=T0 + 2 * D, until=T0 + 2 * D),
    "min_level 50 and the rare source": Filters(min_level=50, source=RARE_SOURCE),
    "visible to none": Filters(visible=()),
}


# A source glob alone, or a level below every step, narrows no block: those are checked record by record.
ROW_BY_ROW = {
    "glob source",
    "glob with a literal underscore",
    "glob with ?",
    "glob and min_level 5 (below every step)",
    "visible to a reader scoped to some robots",  # what a reader may see narrows no block either
}


@pytest.mark.parametrize("name", FILTER_CASES)
def test_each_filter_finds_exactly_what_the_in_memory_rule_finds(written: Written, name: str) -> None:
    filters = FILTER_CASES[name]
    assert (blocks.selection_of(filters) is None) == (name in ROW_BY_ROW)  # the path this case means to take
    expected = assert_found_exactly(written.service, written.stored, filters)
    assert expected, "a case that matches nothing belongs in NOTHING_CASES"


@pytest.mark.parametrize("filters", NOTHING_CASES.values(), ids=NOTHING_CASES.keys())
def test_filters_that_match_nothing_find_nothing(written: Written, filters: Filters) -> None:
    assert expected_ids(written.stored, filters) == []
    assert assert_found_exactly(written.service, written.stored, filters) == []


NARROWING_CASES = {
    name: filters
    for name, filters in {**FILTER_CASES, **NOTHING_CASES}.items()
    if blocks.selection_of(filters) is not None
}


@pytest.mark.parametrize("filters", NARROWING_CASES.values(), ids=NARROWING_CASES.keys())
def test_the_candidate_blocks_are_those_that_may_hold_a_match(written: Written, filters: Filters) -> None:
    """The summaries' keys and time spans select every block that may hold a match, and no other: a block
    missed would lose matches, a block too many would cost a search a read of its records."""
    by_block: dict[int, list[Row]] = {}
    for record_id, row in written.stored.items():
        by_block.setdefault(blocks.block_of(record_id), []).append(row)
    selection = blocks.selection_of(filters)
    assert selection is not None
    with written.store.connection() as connection:
        newest_first = blocks._candidates(connection, selection, ascending=False, bound=None)
    assert newest_first == sorted((n for n, rows in by_block.items() if may_hold(rows, filters)), reverse=True)


# ---- 2. migration 0009: records stored before the block summaries -----------------------------------------

# Cycles over the ids, each value but the commonest on a few percent of them: every filter finds a few hundred.
OLD_SOURCES = ["robot:legacy-b", "agent:old-pc", "orchestrator", *["robot:legacy-a"] * 13]
OLD_RUNS = ["run-a", "run-b", "run-c", *[None] * 17]
OLD_LEVELS = [35, 30, 30, 40, *[20] * 9, *[10] * 12]
NEEDLES = {5, 4095, 4096, 5999}  # both sides of the boundary of blocks 0 and 1
OLD_RECORDS = 6000


def old_record(n: int) -> Row:
    return Row(
        T0 + timedelta(minutes=n, microseconds=n),  # ~4 days, in id order
        50 if n in (17, 4500) else OLD_LEVELS[n % len(OLD_LEVELS)],
        OLD_SOURCES[n % len(OLD_SOURCES)],
        OLD_RUNS[n % len(OLD_RUNS)],
        f"legacy {n} {'needle' if n in NEEDLES else 'hay'} ledger",
        {},
        False,
    )


def store_old_style(store: Store) -> Stored:
    """Records as revision 0008 stored them: contiguous ids with no summaries; SQLite indexed every message in
    log_fts, PostgreSQL the words of each block (and its block sequence went past the ids, as 0007 set it)."""
    stored = {n: old_record(n) for n in range(1, OLD_RECORDS + 1)}
    insert = text(
        "INSERT INTO log_records (id, time, level, source, run_id, message, fields, truncated) "
        "VALUES (:id, :time, :level, :source, :run_id, :message, '{}', false)"
    ).bindparams(bindparam("time", type_=UTCDateTime()))
    with store.engine.begin() as connection:
        connection.execute(
            insert,
            [
                {
                    "id": n,
                    "time": r.time,
                    "level": r.level,
                    "source": r.source,
                    "run_id": r.run_id,
                    "message": r.message,
                }
                for n, r in stored.items()
            ],
        )
        if store.dialect == "sqlite":
            connection.execute(text("INSERT INTO log_fts(rowid, message) SELECT id, message FROM log_records"))
        else:
            blocks.rebuild_words(connection)
            connection.execute(text("SELECT setval('log_fts_block_seq', :top)"), {"top": blocks.block_of(OLD_RECORDS)})
    return stored


MIGRATED_CASES = [
    Filters(text="needle"),
    Filters(text="NEEDLE ledger", min_level=20),
    Filters(run_id="run-b"),
    Filters(source="robot:legacy-b"),
    Filters(source="robot:legacy-*", min_level=40),
    Filters(min_level=35),
    Filters(min_level=50),
    Filters(since=T0 + timedelta(minutes=4000), until=T0 + timedelta(minutes=4200)),  # across the two blocks
    Filters(text="hay", run_id="run-c", since=T0 + timedelta(days=3)),
    Filters(text="needle", run_id="run-b"),  # nothing among the old records
]


def assert_every_case_found(service: LogService, stored: Stored) -> list[list[int]]:
    # Large pages: what matters here is what is found (the filter cases above walk small ones).
    return [assert_found_exactly(service, stored, filters, (PAGE_MAX, PAGE_MAX)) for filters in MIGRATED_CASES]


def test_migration_0009_summarizes_records_stored_before_it_both_ways(store: Store) -> None:
    config = alembic_config(store.engine)
    command.downgrade(config, "0008")
    stored = store_old_style(store)
    command.upgrade(config, "head")
    assert_summaries_describe_their_records(store, stored)
    service = LogService(store, LogsSettings(), EventHub())
    try:
        before_the_write = assert_every_case_found(service, stored)
        assert before_the_write[0] == sorted(NEEDLES) and before_the_write[-1] == []
        new_row = Row(T0 + timedelta(days=2), 50, "robot:legacy-b", "run-b", "needle in a new block", {}, False)
        (new_id,) = service.write([new_row]).result()
        assert blocks.block_of(new_id) > blocks.block_of(OLD_RECORDS)  # new blocks start past the old ids
        stored[new_id] = new_row
        answers = assert_every_case_found(service, stored)
        assert new_id in answers[0]
    finally:
        service.stop()

    command.downgrade(config, "0008")
    # The old schema works again: its indexes, and its index of the words (SQLite: of every message).
    indexes = {index["name"] for index in inspect(store.engine).get_indexes("log_records")}
    assert {"ix_log_records_time", "ix_log_records_run_id_id", "ix_log_records_source_id"} <= indexes
    with store.connection() as connection:
        if store.dialect == "sqlite":
            found = connection.execute(text("SELECT rowid FROM log_fts WHERE log_fts MATCH 'needle' ORDER BY rowid"))
            assert list(found.scalars()) == [*sorted(NEEDLES), new_id]
        else:
            found = connection.execute(text("SELECT id FROM log_fts_blocks WHERE 'needle' = ANY(words) ORDER BY id"))
            assert list(found.scalars()) == sorted({blocks.block_of(i) for i in [*NEEDLES, new_id]})
    command.upgrade(config, "head")
    assert_summaries_describe_their_records(store, stored)
    service = LogService(store, LogsSettings(), EventHub())
    try:
        assert assert_every_case_found(service, stored) == answers
        (newest_id,) = service.write([new_row]).result()
        assert blocks.block_of(newest_id) > blocks.block_of(new_id)
    finally:
        service.stop()


# ---- 3. retention by age, block by block ------------------------------------------------------------------


def test_retention_by_age_expires_records_block_by_block(store: Store) -> None:
    now = T0 + timedelta(days=20)
    cutoff = now - timedelta(days=7)
    service = LogService(store, LogsSettings(retention_days=7, max_rows=1_000_000), EventHub())

    def old(n: int) -> Row:
        return Row(cutoff - timedelta(days=2, seconds=n), 30, "robot:old", "run-old", f"ancient ledger {n}", {}, False)

    def new(n: int, source: str = "robot:new") -> Row:
        return Row(cutoff + timedelta(days=5, seconds=n), 20, source, "run-new", f"fresh ledger {n}", {}, False)

    # Old and new in one block; at the cutoff itself a record stays, a microsecond before it goes.
    at_cutoff = Row(cutoff, 20, "robot:new", "run-new", "fresh ledger at the cutoff", {}, False)
    just_before = Row(cutoff - timedelta(microseconds=1), 20, "robot:old", "run-old", "ancient ledger", {}, False)
    mixed = [old(n) if n % 2 else new(n) for n in range(300)] + [at_cutoff, just_before]
    # Entirely old, written between the others: only its own summary's time span can have it expired.
    entirely_old = [old(n) for n in range(40)]
    entirely_new = [new(n, "robot:newer") for n in range(25)]
    stored: Stored = {}
    try:
        write_ids = []
        for rows in (mixed, entirely_old, entirely_new):
            ids = service.write(rows).result()
            assert blocks.block_of(ids[0]) == blocks.block_of(ids[-1])  # each write is one block
            write_ids.append(ids)
            stored.update(zip(ids, rows, strict=True))
        mixed_block, old_block, new_block = (blocks.block_of(ids[0]) for ids in write_ids)
        assert mixed_block < old_block < new_block
        before = block_rows(store)
        assert sorted(before) == [mixed_block, old_block, new_block]

        assert service.housekeeping(now) == {"expired": 150 + 1 + 40, "over_max_rows": 0}
        kept = {record_id: row for record_id, row in stored.items() if row.time >= cutoff}
        with store.connection() as connection:
            remaining = connection.execute(text("SELECT id FROM log_records ORDER BY id")).scalars().all()
        assert remaining == sorted(kept)
        after = block_rows(store)
        assert sorted(after) == [mixed_block, new_block]  # the fully expired block's summary went
        assert after[mixed_block].min_time == cutoff  # narrowed to its oldest record left
        assert after[mixed_block].max_time == before[mixed_block].max_time
        assert after[new_block] == before[new_block]

        # Nothing older than the cutoff is left, and no summary says otherwise: a second run changes nothing.
        assert service.housekeeping(now) == {"expired": 0, "over_max_rows": 0}
        assert block_rows(store) == after
        for filters in [
            Filters(),
            Filters(text="ledger"),
            Filters(text="ancient"),
            Filters(source="robot:old"),
            Filters(run_id="run-old"),
            Filters(run_id="run-new", min_level=20),
            Filters(min_level=30),
            Filters(until=cutoff),
            Filters(since=cutoff, until=cutoff + timedelta(seconds=1)),
            Filters(source="robot:new*", text="fresh"),
        ]:
            assert_found_exactly(service, kept, filters)
        assert expected_ids(kept, Filters(text="ancient")) == []
    finally:
        service.stop()


# ---- where a database's own text rules differ from the in-memory rule ----


def assert_written_rows_found_as_the_tail_finds_them(store: Store, rows: list[Row], cases: list[Filters]) -> None:
    service = LogService(store, LogsSettings(), EventHub())
    try:
        stored = dict(zip(service.write(rows).result(), rows, strict=True))
        for filters in cases:
            assert expected_ids(stored, filters), f"the case must match something: {filters}"
            assert_found_exactly(service, stored, filters)
    finally:
        service.stop()


def test_a_source_glob_is_case_sensitive_as_in_the_live_tail(store: Store) -> None:
    """SQLite's LIKE ignores ASCII case: a source glob there is a GLOB, case-sensitive as the live tail, an exact
    source and PostgreSQL's LIKE are."""
    rows = [Row(T0, 20, source, None, f"from {source}", {}, False) for source in ("robot:billing", "robot:Billing")]
    rows.append(Row(T0, 20, "ROBOT:BILLING", None, "shouting", {}, False))
    cases = [Filters(source="robot:b*"), Filters(source="robot:B*"), Filters(source="ROBOT:*")]
    assert_written_rows_found_as_the_tail_finds_them(store, rows, cases)


def test_a_word_with_a_letter_that_lowercases_to_ascii_is_found(store: Store) -> None:
    """U+212A KELVIN SIGN lower-cases to an ASCII "k": the tail's rule finds "kraken" in "\u212araken", so the
    search must too, although SQLite's LIKE (and ILIKE under a C ctype) folds ASCII letters only."""
    rows = [
        Row(T0, 20, "robot:sea", None, message, {}, False)
        for message in ("\u212araken sighted", "kraken seen", "KRAKEN ahead", "krakens elsewhere")
    ]
    assert_written_rows_found_as_the_tail_finds_them(store, rows, [Filters(text="kraken"), Filters(text="KRAKEN")])
