"""The log table's one secondary index, on both stores: a summary row per block of records.

A record's id is `block << BLOCK_BITS | place`, so a block's records are one id range. A block is written once,
with the records of one write: its keys (the distinct words of its messages, and a key for each source, run id
and level it holds; `words`) and the span of its records' times. Ingest thus maintains one index entry per
distinct key of a block instead of an entry per record in each of four indexes (time, source, run, full text):
that per-record upkeep was most of the stores' cost of a record.

A query with a word, an exact source, a run id, a minimum level or a time range finds the blocks that may hold
a match (PostgreSQL: a GIN index over the keys; SQLite: FTS5 over them), newest (or oldest) first, reads their
id ranges with every filter in SQL, and rechecks the words of each record with `words.contains_all`, the rule
the live tail uses too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    MetaData,
    Table,
    Text,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY

from robofleet.logs.filters import Filters
from robofleet.logs.globs import is_glob
from robofleet.logs.words import (
    array_literal,
    contains_all,
    indexed_words,
    level_keys,
    min_level_key,
    query_keys,
    run_key,
    source_key,
)
from robofleet.store.base import UTCDateTime

if TYPE_CHECKING:
    from robofleet.logs.ingest import Row

BLOCK_BITS = 12  # a block is an id range of 4,096 (records stored before revision 0009 fill them)
# How many records a write puts in a block. A search rechecks every record of a block that may hold a match: with
# 4,096 a rare word cost ~4x the reading; with far fewer the summaries grow towards an index entry per record.
BLOCK_ROWS = 1024
# How many blocks each round reads: few first (a common word fills a page from one block), more when sparse.
ROUND_BLOCKS = (1, 4, 16, 64)
# Candidate blocks fetched at a time: a filter every block passes must not fetch all of them for one page.
CANDIDATES = 4096
# A search that has rechecked this many records without filling its page answers what it found and a cursor
# to go on from: a query whose words are each common but rarely together must not hold a connection for long.
SCAN_BUDGET = 100_000

# Kept apart from the ORM metadata: like SQLite's FTS5 table over its keys, its types differ by dialect.
BLOCKS = Table(
    "log_fts_blocks",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("words", Text().with_variant(ARRAY(Text), "postgresql")),  # SQLite: the keys separated by spaces
    Column("min_time", UTCDateTime()),
    Column("max_time", UTCDateTime()),
)


def block_of(record_id: int) -> int:
    return record_id >> BLOCK_BITS


def first_id(block: int) -> int:
    return block << BLOCK_BITS


# ---- writing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """A block's summary row, but its number (given in the write's turn)."""

    words: str  # in the dialect's form: a text[] literal (PostgreSQL), keys separated by spaces (SQLite)
    min_time: datetime
    max_time: datetime


def keys_of(rows: Sequence[Row]) -> list[str]:
    keys = set(indexed_words(row.message for row in rows))
    keys.update(source_key(source) for source in {row.source for row in rows})
    keys.update(run_key(run_id) for run_id in {row.run_id for row in rows} if run_id is not None)
    keys.update(level_keys(max(row.level for row in rows)))
    return sorted(keys)


def words_value(keys: list[str], dialect: str) -> str:
    return array_literal(keys) if dialect == "postgresql" else " ".join(keys)


def summarize(rows: Sequence[Row], dialect: str, size: int = BLOCK_ROWS) -> list[Summary]:
    """The blocks of one write, BLOCK_ROWS rows each but the last: row i is at place i % BLOCK_ROWS of the block
    numbered numbers[i // BLOCK_ROWS] (`ids_of`), whatever block numbers the write was given."""
    found = []
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        times = [row.time for row in part]
        found.append(Summary(words_value(keys_of(part), dialect), min(times), max(times)))
    return found


def ids_of(numbers: Sequence[int], count: int) -> list[int]:
    ids: list[int] = []
    for number, start in zip(numbers, range(0, count, BLOCK_ROWS), strict=False):
        ids.extend(range(first_id(number), first_id(number) + min(BLOCK_ROWS, count - start)))
    return ids


def _stored_blocks(connection: Connection, columns: str, **types: Any) -> Iterator[tuple[int, list[Any]]]:
    """Every stored record (`columns`, the first being id), grouped by the block its id falls in, in id order."""
    query = text(
        f"SELECT {columns} FROM log_records WHERE id > :last ORDER BY id LIMIT 10000"  # noqa: S608
    ).columns(**types)
    block: int | None = None
    records: list[Any] = []
    last = -1
    while True:
        found = connection.execute(query, {"last": last}).all()
        for record in found:
            if block is not None and block_of(record[0]) != block:
                yield block, records
                records = []
            block = block_of(record[0])
            records.append(record)
        if len(found) < 10_000:
            break
        last = found[-1][0]
    if block is not None:
        yield block, records


def rebuild_words(connection: Connection, keys_of: Callable[[list[str]], list[str]] = indexed_words) -> None:
    """PostgreSQL before revision 0009: a block row held the keys of its messages' words only (the tests store
    records as revision 0008 did with it; the migrations keep frozen copies of their own)."""
    for block, records in _stored_blocks(connection, "id, message"):
        connection.execute(
            text(
                "INSERT INTO log_fts_blocks (id, words) VALUES (:id, CAST(:words AS text[])) "
                "ON CONFLICT (id) DO UPDATE SET words = EXCLUDED.words"
            ),
            {"id": block, "words": array_literal(keys_of([message for _, message in records]))},
        )


# ---- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What a block must have to hold a match: every key, and times reaching into [since, until)."""

    keys: list[str]
    since: datetime | None
    until: datetime | None


def selection_of(filters: Filters) -> Selection | None:
    """None when no filter narrows the blocks (a source glob does not: it is checked record by record)."""
    keys = query_keys(filters.words)
    if filters.run_id is not None:
        keys.append(run_key(filters.run_id))
    if filters.source and not is_glob(filters.source):
        keys.append(source_key(filters.source))
    level = min_level_key(filters.min_level) if filters.min_level is not None else None
    if level is not None:
        keys.append(level)
    if not keys and filters.since is None and filters.until is None:
        return None
    return Selection(keys, filters.since, filters.until)


def _fts5_query(keys: list[str]) -> str:
    return " AND ".join('"' + key.replace('"', '""') + '"' for key in keys)


def _candidates(connection: Connection, selection: Selection, *, ascending: bool, bound: int | None) -> list[int]:
    """Up to CANDIDATES block numbers that may hold a match, in order, past `bound` (a block number)."""
    where: list[ColumnElement[bool]] = []
    if selection.since is not None:
        where.append(BLOCKS.c.max_time >= selection.since)
    if selection.until is not None:
        where.append(BLOCKS.c.min_time < selection.until)
    if bound is not None:
        where.append(BLOCKS.c.id >= bound if ascending else BLOCKS.c.id <= bound)
    if connection.dialect.name == "postgresql":
        if selection.keys:
            where.append(type_coerce(BLOCKS.c.words, ARRAY(Text)).contains(selection.keys))
        # Materialized, so that the key index finds the blocks: asked for "newest first, a few", the planner
        # walks the primary key backwards instead and unpacks every block's keys until enough match (~100 ms on
        # a million records for a rare word).
        matching = select(BLOCKS.c.id).where(*where).cte("matching").prefix_with("MATERIALIZED")
        order = matching.c.id.asc() if ascending else matching.c.id.desc()
        return list(connection.execute(select(matching.c.id).order_by(order).limit(CANDIDATES)).scalars())
    # A key FTS5 makes no token of (a word of underscores only) would match nothing: it is left to the recheck.
    keys = [key for key in selection.keys if any(char.isalnum() for char in key)]
    if keys:
        fts = (
            text("SELECT rowid AS id FROM log_fts_words WHERE log_fts_words MATCH :match")
            .bindparams(match=_fts5_query(keys))
            .columns(BLOCKS.c.id)
        )
        where.append(BLOCKS.c.id.in_(fts.subquery().select()))
    order = BLOCKS.c.id.asc() if ascending else BLOCKS.c.id.desc()
    return list(connection.execute(select(BLOCKS.c.id).where(*where).order_by(order).limit(CANDIDATES)).scalars())


def _like_word(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# The only characters whose lower case holds an ASCII letter (U+0130 İ -> i + a dot, U+212A KELVIN SIGN -> k):
# SQLite's LIKE, and ILIKE in a database with the C ctype, fold ASCII letters only.
_FOLDING_TO_ASCII = ("\u0130", "\u212a")


def _prefilter(message: Column[str], word: str, postgres: bool) -> ColumnElement[bool]:
    """A cheap test in SQL that every record holding an ASCII `word` passes (the recheck decides)."""
    test: ColumnElement[bool] = (message.ilike if postgres else message.like)(_like_word(word), escape="\\")
    if "i" in word or "k" in word:
        position = func.strpos if postgres else func.instr
        test = or_(test, *(position(message, char) > 0 for char in _FOLDING_TO_ASCII))
    return test


def _blocks_in_order(
    connection: Connection, selection: Selection, *, ascending: bool, start: int | None
) -> Iterator[int]:
    bound = start
    while True:
        numbers = _candidates(connection, selection, ascending=ascending, bound=bound)
        yield from numbers
        if len(numbers) < CANDIDATES:
            return
        bound = numbers[-1] + 1 if ascending else numbers[-1] - 1


def _read(
    connection: Connection,
    table: Table,
    blocks: list[int],
    where: list[ColumnElement[bool]],
    *,
    ascending: bool,
    want: int,
    postgres: bool,
) -> list[Any]:
    """Up to `want` records of these blocks (given in order) that pass `where`, in id order."""
    order = table.c.id.asc() if ascending else table.c.id.desc()

    def in_blocks(numbers: list[int]) -> ColumnElement[bool]:
        return or_(*(table.c.id.between(first_id(b), first_id(b + 1) - 1) for b in numbers))

    if postgres:  # one statement: a bitmap OR of the ranges on the primary key
        return list(connection.execute(select(table).where(in_blocks(blocks), *where).order_by(order).limit(want)))
    # SQLite uses one range of the primary key per statement: given several, it scans all of it below the bound.
    rows: list[Any] = []
    for number in blocks:
        query = select(table).where(in_blocks([number]), *where).order_by(order).limit(want - len(rows))
        rows.extend(connection.execute(query))
        if len(rows) == want:
            break
    return rows


def search(
    connection: Connection,
    table: Table,
    conditions: Sequence[ColumnElement[bool]],
    selection: Selection,
    words: list[str],
    *,
    after: int | None,
    before: int | None,
    ascending: bool,
    limit: int,
    scan_budget: int = SCAN_BUDGET,
) -> tuple[list[Any], int | None]:
    """Up to `limit` matching records past `after` / before `before`, in id order; and, when the scan budget ran
    out first, the exclusive bound to resume from (None when the result is complete). `conditions` are every
    filter but the words, in SQL."""
    postgres = connection.dialect.name == "postgresql"
    prefilter = [_prefilter(table.c.message, word, postgres) for word in words if word.isascii()]
    start = None
    if ascending and after is not None:
        start = block_of(after + 1)
    if not ascending and before is not None:
        start = block_of(before - 1)
    candidates = _blocks_in_order(connection, selection, ascending=ascending, start=start)
    found: list[Any] = []
    scanned = 0
    pending: list[int] = []
    for round_number in itertools.count():
        count = ROUND_BLOCKS[min(round_number, len(ROUND_BLOCKS) - 1)]
        # Blocks already read to their end (the bound moved past them) are skipped.
        pending = [
            number
            for number in pending
            if (after is None or number >= block_of(after + 1)) and (before is None or number <= block_of(before - 1))
        ]
        pending.extend(itertools.islice(candidates, max(0, count - len(pending))))
        blocks = pending[:count]
        if not blocks:
            return found, None
        bounds = [*conditions, *prefilter]
        if after is not None:
            bounds.append(table.c.id > after)
        if before is not None:
            bounds.append(table.c.id < before)
        want = (limit - len(found)) * 2 + 20
        rows = _read(connection, table, blocks, bounds, ascending=ascending, want=want, postgres=postgres)
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
