"""PostgreSQL's full-text index for logs: one row of distinct words per block of records.

A record's id is `block << BLOCK_BITS | place`, so a block's records are one id range. Ingest writes a block's
words once (a GIN key per distinct word of the block, not per word of every record); a search finds the blocks
holding every word of the query, newest (or oldest) first, reads their ranges with the other filters, and
rechecks each record with `words.contains_all`, the rule the live tail uses too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BigInteger, Column, ColumnElement, Connection, MetaData, Table, Text, or_, select, text
from sqlalchemy.dialects.postgresql import ARRAY

from robofleet.logs.words import array_literal, contains_all, indexed_words, query_keys

BLOCK_BITS = 12
BLOCK_ROWS = 1 << BLOCK_BITS
# How many blocks each round reads: few first (a common word fills a page from one block), more when sparse.
ROUND_BLOCKS = (1, 4, 16, 64)
# A search that has rechecked this many records without filling its page answers what it found and a cursor
# to go on from: a query whose words are each common but rarely together must not hold a connection for long.
SCAN_BUDGET = 100_000

# Kept apart from the ORM metadata: like SQLite's FTS5 table, it exists on one dialect only.
BLOCKS = Table("log_fts_blocks", MetaData(), Column("id", BigInteger, primary_key=True), Column("words", ARRAY(Text)))


def block_of(record_id: int) -> int:
    return record_id >> BLOCK_BITS


def first_id(block: int) -> int:
    return block << BLOCK_BITS


def rebuild(connection: Connection, keys_of: Callable[[list[str]], list[str]] = indexed_words) -> None:
    """Index the words of every stored record by the block its id falls in (migrations: when the records were
    stored before the block index, or when the words' keys change)."""
    block: int | None = None
    messages: list[str] = []
    last = -1
    while True:
        rows = connection.execute(
            text("SELECT id, message FROM log_records WHERE id > :last ORDER BY id LIMIT 10000"), {"last": last}
        ).all()
        for record_id, message in rows:
            if block is not None and block_of(record_id) != block:
                _store_block(connection, block, keys_of(messages))
                messages = []
            block = block_of(record_id)
            messages.append(message)
        if len(rows) < 10_000:
            break
        last = rows[-1][0]
    if block is not None:
        _store_block(connection, block, keys_of(messages))


def _store_block(connection: Connection, block: int, keys: list[str]) -> None:
    connection.execute(
        text(
            "INSERT INTO log_fts_blocks (id, words) VALUES (:id, CAST(:words AS text[])) "
            "ON CONFLICT (id) DO UPDATE SET words = EXCLUDED.words"
        ),
        {"id": block, "words": array_literal(keys)},
    )


def _like_word(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(
    connection: Connection,
    table: Table,
    conditions: Sequence[ColumnElement[bool]],
    words: list[str],
    *,
    after: int | None,
    before: int | None,
    ascending: bool,
    limit: int,
    scan_budget: int = SCAN_BUDGET,
) -> tuple[list[Any], int | None]:
    """Up to `limit` records holding every word, past `after` / before `before`, in id order; and, when the scan
    budget ran out first, the exclusive bound to resume from (None when the result is complete)."""
    keys = query_keys(words)
    # A cheap prefilter in SQL where PostgreSQL and Python surely agree on case (ASCII); the recheck decides.
    prefilter = [table.c.message.ilike(_like_word(word), escape="\\") for word in words if word.isascii()]
    matching = select(BLOCKS.c.id).where(BLOCKS.c.words.contains(keys))
    if ascending and after is not None:
        matching = matching.where(BLOCKS.c.id >= block_of(after + 1))
    if not ascending and before is not None:
        matching = matching.where(BLOCKS.c.id <= block_of(before - 1))
    # Materialized, so that the word index finds the blocks: asked for "newest first, a few", the planner walks
    # the primary key backwards instead and unpacks every block's words until enough match (~100 ms on a
    # million records for a rare word). Block numbers are small: all of them at once, then read in rounds.
    candidates = matching.cte("matching").prefix_with("MATERIALIZED")
    order = candidates.c.id.asc() if ascending else candidates.c.id.desc()
    numbers = list(connection.execute(select(candidates.c.id).order_by(order)).scalars())
    found: list[Any] = []
    scanned = 0
    position = 0
    for round_number in itertools.count():
        # Blocks already read to their end (the bound moved past them) are skipped.
        if ascending:
            while after is not None and position < len(numbers) and numbers[position] < block_of(after + 1):
                position += 1
        else:
            while before is not None and position < len(numbers) and numbers[position] > block_of(before - 1):
                position += 1
        count = ROUND_BLOCKS[min(round_number, len(ROUND_BLOCKS) - 1)]
        blocks = numbers[position : position + count]
        if not blocks:
            return found, None
        ranges = or_(*(table.c.id.between(first_id(b), first_id(b + 1) - 1) for b in blocks))
        bounds = []
        if after is not None:
            bounds.append(table.c.id > after)
        if before is not None:
            bounds.append(table.c.id < before)
        want = (limit - len(found)) * 2 + 20
        rows = connection.execute(
            select(table)
            .where(ranges, *bounds, *conditions, *prefilter)
            .order_by(table.c.id.asc() if ascending else table.c.id.desc())
            .limit(want)
        ).all()
        for row in rows:
            if contains_all(row.message, words):
                found.append(row)
                if len(found) == limit:
                    return found, None
        scanned += len(rows)
        if len(rows) == want:  # the blocks hold more: go on from the last record read
            after, before = (rows[-1].id, before) if ascending else (after, rows[-1].id)
        elif ascending:
            after = first_id(max(blocks) + 1) - 1
        else:
            before = first_id(min(blocks))
        if scanned >= scan_budget:
            return found, after if ascending else before
    raise AssertionError("unreachable")
