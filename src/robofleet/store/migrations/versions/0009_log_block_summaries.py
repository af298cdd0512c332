"""logs: the block summaries become the log table's one secondary index, on both stores

The indexes on time, (run_id, id) and (source, id), and on SQLite the FTS5 index of every message, cost most
of each store's work for a record. A block's row (log_fts_blocks) now also keys each source, run id and level
its records have, and the span of their times; SQLite indexes those keys with FTS5 (log_fts_words), as
PostgreSQL does with GIN. Records already stored are summarized by the block their id falls in; new blocks
start past them. (logs/blocks.py)

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from alembic import op
from sqlalchemy import Connection, DateTime, bindparam, text

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Frozen here as this revision defined them (a migration means the same thing for ever; live code moves on).
BLOCK_BITS = 12  # a record's block is its id >> BLOCK_BITS
WORD = re.compile(r"\w+")
INDEXED_LENGTH = 64  # GIN keys must stay well under a page: longer words are keyed by their prefix
NUMBERED_PREFIX = 5  # a word with a digit longer than this is keyed by its first 5 characters and its length
HAS_DIGIT = re.compile(r"\d").search
LEVEL_STEPS = (10, 20, 30, 40, 50)  # a block whose highest level is 30 has the keys ~l10, ~l20 and ~l30

RECORD_INDEXES = (
    ("ix_log_records_run_id_id", "(run_id, id)"),
    ("ix_log_records_source_id", "(source, id)"),
)


def upgrade() -> None:
    for name, _ in RECORD_INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP INDEX ix_log_records_time")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX log_fts_blocks_words")  # one build at the end is far cheaper than an update per block
        op.execute("ALTER TABLE log_fts_blocks ADD COLUMN min_time timestamptz, ADD COLUMN max_time timestamptz")
        summarize_blocks(op.get_bind())
        op.execute("ALTER TABLE log_fts_blocks ALTER COLUMN min_time SET NOT NULL, ALTER COLUMN max_time SET NOT NULL")
        op.execute("CREATE INDEX log_fts_blocks_words ON log_fts_blocks USING gin (words)")
        return
    op.execute("DROP TRIGGER log_fts_delete")
    op.execute("DROP TABLE log_fts")
    op.execute(
        "CREATE TABLE log_fts_blocks (id INTEGER PRIMARY KEY, words TEXT NOT NULL, "
        "min_time DATETIME NOT NULL, max_time DATETIME NOT NULL)"
    )
    # "~" is part of a key (words.py): a key is one token.
    op.execute(
        "CREATE VIRTUAL TABLE log_fts_words USING fts5(words, content='log_fts_blocks', content_rowid='id', "
        "tokenize = \"unicode61 remove_diacritics 0 tokenchars '~'\")"
    )
    op.execute(
        "CREATE TRIGGER log_fts_blocks_insert AFTER INSERT ON log_fts_blocks BEGIN "
        "INSERT INTO log_fts_words(rowid, words) VALUES (new.id, new.words); END"
    )
    op.execute(
        "CREATE TRIGGER log_fts_blocks_delete AFTER DELETE ON log_fts_blocks BEGIN "
        "INSERT INTO log_fts_words(log_fts_words, rowid, words) VALUES ('delete', old.id, old.words); END"
    )
    op.execute(
        "CREATE TRIGGER log_fts_blocks_update AFTER UPDATE OF words ON log_fts_blocks BEGIN "
        "INSERT INTO log_fts_words(log_fts_words, rowid, words) VALUES ('delete', old.id, old.words); "
        "INSERT INTO log_fts_words(rowid, words) VALUES (new.id, new.words); END"
    )
    summarize_blocks(op.get_bind())


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX log_fts_blocks_words")
        op.execute("ALTER TABLE log_fts_blocks DROP COLUMN min_time, DROP COLUMN max_time")
        index_words(op.get_bind())
        op.execute("CREATE INDEX log_fts_blocks_words ON log_fts_blocks USING gin (words)")
        op.execute("CREATE INDEX ix_log_records_time ON log_records USING brin (time)")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER log_fts_blocks_{trigger}")
        op.execute("DROP TABLE log_fts_words")
        op.execute("DROP TABLE log_fts_blocks")
        op.execute("CREATE VIRTUAL TABLE log_fts USING fts5(message, content='log_records', content_rowid='id')")
        op.execute("INSERT INTO log_fts(log_fts) VALUES ('rebuild')")
        op.execute(
            "CREATE TRIGGER log_fts_delete AFTER DELETE ON log_records BEGIN "
            "INSERT INTO log_fts(log_fts, rowid, message) VALUES ('delete', old.id, old.message); END"
        )
        op.execute("CREATE INDEX ix_log_records_time ON log_records (time)")
    for name, columns in RECORD_INDEXES:
        op.execute(f"CREATE INDEX {name} ON log_records {columns}")


def word_keys(messages: Iterable[str]) -> set[str]:
    """A word with a digit and more than NUMBERED_PREFIX characters is keyed by its prefix and its length ("~" is
    no word character: no word has such a key), any other word whole."""
    keys = set()
    for word in set(WORD.findall("\n".join(messages).lower())):
        if len(word) > NUMBERED_PREFIX and HAS_DIGIT(word):
            keys.add(f"{word[:NUMBERED_PREFIX]}~{len(word)}")
        else:
            keys.add(word[:INDEXED_LENGTH])
    return keys


def digest(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def block_keys(records: list[Any]) -> list[str]:
    """The keys of a block: its words, "~s" and "~r" + a digest of each source and run id, "~l<step>" for each
    level step its highest record reaches."""
    keys = word_keys(record.message for record in records)
    keys.update("~s" + digest(source) for source in {record.source for record in records})
    keys.update("~r" + digest(run_id) for run_id in {record.run_id for record in records} if run_id is not None)
    top = max(record.level for record in records)
    keys.update(f"~l{step}" for step in LEVEL_STEPS if top >= step)
    return sorted(keys)


def array_literal(keys: list[str]) -> str:
    """A text[] literal; keys are \\w runs and "~", with nothing to escape."""
    return '{"' + '","'.join(keys) + '"}' if keys else "{}"


def stored_blocks(connection: Connection, columns: str, **types: Any) -> Iterator[tuple[int, list[Any]]]:
    """Every stored record (`columns`, the first being id), grouped by the block its id falls in, in id order."""
    query = text(f"SELECT {columns} FROM log_records WHERE id > :last ORDER BY id LIMIT 10000").columns(**types)  # noqa: S608
    block: int | None = None
    records: list[Any] = []
    last = -1
    while True:
        found = connection.execute(query, {"last": last}).all()
        for record in found:
            if block is not None and record.id >> BLOCK_BITS != block:
                yield block, records
                records = []
            block = record.id >> BLOCK_BITS
            records.append(record)
        if len(found) < 10_000:
            break
        last = found[-1].id
    if block is not None:
        yield block, records


def summarize_blocks(connection: Connection) -> None:
    """A summary row per block of the stored records: their keys and the span of their times."""
    postgres = connection.dialect.name == "postgresql"
    words = "CAST(:words AS text[])" if postgres else ":words"
    # SQLite keeps UTC times without a zone: read and written back as such, they stay what the log table holds.
    moment = DateTime(timezone=True)
    upsert = text(
        f"INSERT INTO log_fts_blocks (id, words, min_time, max_time) VALUES (:id, {words}, :min_time, :max_time) "  # noqa: S608
        "ON CONFLICT (id) DO UPDATE SET words = EXCLUDED.words, min_time = EXCLUDED.min_time, "
        "max_time = EXCLUDED.max_time"
    ).bindparams(bindparam("min_time", type_=moment), bindparam("max_time", type_=moment))
    for block, records in stored_blocks(connection, "id, time, level, source, run_id, message", time=moment):
        keys = block_keys(records)
        times: list[datetime] = [record.time for record in records]
        connection.execute(
            upsert,
            {
                "id": block,
                "words": array_literal(keys) if postgres else " ".join(keys),
                "min_time": min(times),
                "max_time": max(times),
            },
        )


def index_words(connection: Connection) -> None:
    """PostgreSQL, back to revision 0008: each block's row holds the keys of its messages' words only."""
    insert = text(
        "INSERT INTO log_fts_blocks (id, words) VALUES (:id, CAST(:words AS text[])) "
        "ON CONFLICT (id) DO UPDATE SET words = EXCLUDED.words"
    )
    for block, records in stored_blocks(connection, "id, message"):
        keys = sorted(word_keys(record.message for record in records))
        connection.execute(insert, {"id": block, "words": array_literal(keys)})
