"""Full-text search on both stores, across many insert blocks: every match once, in order, both ways; the tail's
rule and the store's agree; the block index resumes a search cut short and drops the summaries of emptied
blocks (both stores), and is built for records stored before it existed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from robofleet.events import EventHub
from robofleet.logs import blocks
from robofleet.logs.filters import Filters
from robofleet.logs.ingest import Row
from robofleet.logs.service import LogService
from robofleet.logs.store_ops import fetch
from robofleet.logs.words import contains_all, source_key, words_of
from robofleet.settings.model import LogsSettings, Settings
from robofleet.store import Store
from robofleet.store.migrate import alembic_config

WORDS = ["invoice", "ledger", "portal", "login", "customer", "order", "payment", "export", "Zürich", "snake_case"]


def messages(count: int, seed: int) -> list[str]:
    chooser = random.Random(seed)
    return [f"step {n} " + " ".join(chooser.choice(WORDS) for _ in range(3)) + "." for n in range(count)]


def store_batches(service: LogService, batches: list[list[str]]) -> list[tuple[int, str]]:
    stored: list[tuple[int, str]] = []
    now = datetime.now(UTC)
    for batch in batches:
        ids = service.write([Row(now, 20, "robot:text", None, message, {}, False) for message in batch]).result()
        stored += zip(ids, batch, strict=True)
    return stored


def walk(service: LogService, query: str, order: str, limit: int) -> list[int]:
    seen: list[int] = []
    cursor = None
    while True:
        page = service.search(Filters(text=query), limit=limit, cursor=cursor, order=order)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


@pytest.fixture
def service(store: Store, settings: Settings) -> LogService:
    made = LogService(store, settings.logs, EventHub())
    yield made  # type: ignore[misc]
    made.stop()


@pytest.mark.parametrize("query", ["invoice ledger", "zürich", "SNAKE_CASE portal", "step 7", "absent"])
def test_every_match_once_in_order_both_ways_across_blocks(service: LogService, query: str) -> None:
    batches = [messages(size, seed) for seed, size in enumerate([1, 40, 3, 200, 17, 1, 90, 5])]
    stored = store_batches(service, batches)
    words = words_of(query)
    expected = [record_id for record_id, message in stored if contains_all(message, words)]
    assert walk(service, query, "desc", 7) == sorted(expected, reverse=True)
    assert walk(service, query, "asc", 11) == sorted(expected)
    exported = [item["id"] for chunk in service.export(Filters(text=query), 10_000) for item in chunk]
    assert exported == sorted(expected)
    # The live tail's in-memory rule says the same of each record.
    for record_id, message in stored:
        row = Row(datetime.now(UTC), 20, "robot:x", None, message, {}, False)
        assert Filters(text=query).matches(row) == (record_id in expected)


def test_words_are_whole_words_not_substrings(service: LogService) -> None:
    store_batches(service, [["invoices sent", "an invoice, sent", "INVOICE-42 failed"]])
    found = service.search(Filters(text="invoice"), limit=10, cursor=None, order="asc")["items"]
    assert [item["message"] for item in found] == ["an invoice, sent", "INVOICE-42 failed"]


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_a_search_cut_short_by_its_budget_resumes_where_it_stopped(store: Store, service: LogService) -> None:
    # Both words are in every block, never in one record: every block is a candidate, none holds a match, and
    # the SQL prefilter (substrings) lets the decoys through to the recheck.
    decoys = [["alpha 1", "beta 2", *(["alphas betas"] * 48)] for _ in range(30)]
    stored = store_batches(service, [*decoys, ["alpha beta together"], *decoys])
    target = next(record_id for record_id, message in stored if message == "alpha beta together")
    with store.connection() as connection:
        found, resume = fetch(connection, Filters(text="beta alpha"), limit=10, scan_budget=200)
        assert found == [] and resume is not None and resume > target
        collected: list[int] = []
        while resume is not None:
            found, resume = fetch(connection, Filters(text="beta alpha"), before=resume, limit=10, scan_budget=200)
            collected += [row.id for row in found]
    assert collected == [target]


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_retention_drops_the_words_of_emptied_blocks(store: Store) -> None:
    service = LogService(store, LogsSettings(retention_days=7, max_rows=100_000), EventHub())
    try:
        now = datetime.now(UTC)
        service.write([Row(now - timedelta(days=9), 20, "robot:old", None, "old words", {}, False)]).result()
        service.write([Row(now, 20, "robot:new", None, "new words", {}, False)]).result()
        assert service.housekeeping(now)["expired"] == 1
        with store.connection() as connection:
            (keys,) = connection.execute(select(blocks.BLOCKS.c.words)).scalars().all()
            if store.dialect == "sqlite":  # FTS5 over the keys follows the summaries (a trigger): "old" is gone
                fts = "SELECT count(*) FROM log_fts_words WHERE log_fts_words MATCH :key"
                assert connection.execute(text(fts), {"key": "old"}).scalar_one() == 0
                assert connection.execute(text(fts), {"key": "words"}).scalar_one() == 1
        # One summary left, the new block's: a text[] on PostgreSQL, keys separated by spaces on SQLite.
        keys = keys if isinstance(keys, list) else keys.split(" ")
        assert "new" in keys and "old" not in keys
        assert [
            i["message"] for i in service.search(Filters(text="words"), limit=5, cursor=None, order="desc")["items"]
        ] == ["new words"]
    finally:
        service.stop()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_records_stored_before_the_block_index_are_found_after_the_migration(store: Store) -> None:
    from alembic import command

    config = alembic_config(store.engine)
    command.downgrade(config, "0006")
    with store.engine.begin() as connection:
        for n in range(1, 6001):  # ids 1..6000: two old-style blocks
            connection.execute(
                text(
                    "INSERT INTO log_records (id, time, level, source, message, fields, truncated) "
                    "VALUES (:id, now(), 20, 'robot:legacy', :message, '{}', false)"
                ),
                {"id": n, "message": f"legacy {n} {'needle' if n in (5, 5999) else 'hay'}"},
            )
    command.upgrade(config, "head")
    service = LogService(store, LogsSettings(), EventHub())
    try:
        found = service.search(Filters(text="needle"), limit=10, cursor=None, order="desc")["items"]
        assert [item["id"] for item in found] == [5999, 5]
        newer = store_batches(service, [["needle again"]])
        assert blocks.block_of(newer[0][0]) > blocks.block_of(6000)  # new blocks start past the old ids
        found = service.search(Filters(text="needle"), limit=10, cursor=None, order="desc")["items"]
        assert [item["id"] for item in found] == [newer[0][0], 5999, 5]
    finally:
        service.stop()


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_a_number_among_thousands_of_consecutive_ones_is_found_exactly(store: Store) -> None:
    service = LogService(store, LogsSettings(), EventHub())
    try:
        stored = store_batches(
            service, [[f"order {100_000 + n} paid" for n in range(start, start + 500)] for start in range(0, 3000, 500)]
        )
        by_message = {message: record_id for record_id, message in stored}
        for number in (100_000, 101_234, 102_999):
            found = service.search(Filters(text=f"{number}"), limit=10, cursor=None, order="desc")["items"]
            assert [item["id"] for item in found] == [by_message[f"order {number} paid"]]
        assert service.search(Filters(text="10123"), limit=10, cursor=None, order="desc")["items"] == []
        assert service.search(Filters(text="103000"), limit=10, cursor=None, order="desc")["items"] == []
        # Consecutive numbers share their keys: a block holds few.
        with store.connection() as connection:
            stored_keys = connection.execute(select(blocks.BLOCKS.c.words)).scalars().all()
        for keys in stored_keys:
            keys = keys if isinstance(keys, list) else keys.split(" ")
            # 500 numbers: 50 keys (a prefix of 5 and a length), and 2 words; one source, levels up to INFO
            assert len([key for key in keys if not key.startswith("~")]) == 52, keys
            assert sorted(key for key in keys if key.startswith("~")) == sorted(
                [source_key("robot:text"), "~l10", "~l20"]
            ), keys
    finally:
        service.stop()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_blocks_indexed_with_whole_numbers_are_indexed_again_by_the_migration(store: Store) -> None:
    from alembic import command

    service = LogService(store, LogsSettings(), EventHub())
    try:
        stored = store_batches(service, [[f"invoice {n} sent" for n in range(9_990_000, 9_990_300)]])
    finally:
        service.stop()
    config = alembic_config(store.engine)
    command.downgrade(config, "0007")
    with store.connection() as connection:
        assert connection.execute(text("SELECT bool_or('9990123' = ANY(words)) FROM log_fts_blocks")).scalar_one()
    command.upgrade(config, "head")
    with store.connection() as connection:
        assert connection.execute(text("SELECT bool_or('99901~7' = ANY(words)) FROM log_fts_blocks")).scalar_one()
    service = LogService(store, LogsSettings(), EventHub())
    try:
        found = service.search(Filters(text="9990123"), limit=10, cursor=None, order="desc")["items"]
        assert [item["id"] for item in found] == [dict((m, i) for i, m in stored)["invoice 9990123 sent"]]
    finally:
        service.stop()
