"""logs on PostgreSQL: full text through a word index per block of records instead of a GIN entry per word of
every record; a BRIN index on time

An expression GIN index over to_tsvector(message) cost ~8 µs a record at ingest: most of PostgreSQL's share of
a record. A block (the records of one insert, up to 4,096) now gets one row in log_fts_blocks with the distinct
words of its messages; a record's id is its block number * 4,096 + its place in the block, so a block's records
are one id range and a search reads the matching blocks' ranges, newest first, and rechecks each record.
SQLite keeps its FTS5 index.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from alembic import op
from sqlalchemy import Connection, text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen here as this revision defined them (a migration means the same thing for ever; live code moves on).
BLOCK_BITS = 12  # a record's block is its id >> BLOCK_BITS
WORD = re.compile(r"\w+")
INDEXED_LENGTH = 64  # GIN keys must stay well under a page: longer words are keyed by their prefix


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    connection = op.get_bind()
    top = connection.execute(text("SELECT coalesce(max(id), 0) FROM log_records")).scalar_one()
    op.execute(f"CREATE SEQUENCE log_fts_block_seq START WITH {(int(top) >> BLOCK_BITS) + 1}")
    op.execute("CREATE TABLE log_fts_blocks (id bigint PRIMARY KEY, words text[] NOT NULL)")
    # Records already stored keep their ids: they are indexed by the block their id falls in.
    index_words(connection)
    op.execute("CREATE INDEX log_fts_blocks_words ON log_fts_blocks USING gin (words)")
    op.execute("DROP INDEX IF EXISTS ix_log_records_message_fts")
    op.execute("DROP INDEX ix_log_records_time")
    # Records arrive roughly in time order: a BRIN index answers time ranges at a tiny fraction of a B-tree's cost.
    op.execute("CREATE INDEX ix_log_records_time ON log_records USING brin (time)")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_log_records_time")
    op.execute("CREATE INDEX ix_log_records_time ON log_records (time)")
    op.execute(
        "CREATE INDEX ix_log_records_message_fts ON log_records USING gin (to_tsvector('simple', message)) "
        "WITH (gin_pending_list_limit = 32768)"
    )
    op.execute("DROP TABLE log_fts_blocks")
    op.execute("DROP SEQUENCE log_fts_block_seq")


def word_keys(messages: Iterable[str]) -> list[str]:
    """The keys of this revision: every word of the messages whole, lower-cased (cut at INDEXED_LENGTH)."""
    return sorted({word[:INDEXED_LENGTH] for word in WORD.findall("\n".join(messages).lower())})


def array_literal(keys: list[str]) -> str:
    """A text[] literal; keys are \\w runs, with nothing to escape."""
    return '{"' + '","'.join(keys) + '"}' if keys else "{}"


def stored_blocks(connection: Connection) -> Iterator[tuple[int, list[str]]]:
    """The messages of the stored records, grouped by the block their id falls in, in id order."""
    query = text("SELECT id, message FROM log_records WHERE id > :last ORDER BY id LIMIT 10000")
    block: int | None = None
    messages: list[str] = []
    last = -1
    while True:
        found = connection.execute(query, {"last": last}).all()
        for record_id, message in found:
            if block is not None and record_id >> BLOCK_BITS != block:
                yield block, messages
                messages = []
            block = record_id >> BLOCK_BITS
            messages.append(message)
        if len(found) < 10_000:
            break
        last = found[-1][0]
    if block is not None:
        yield block, messages


def index_words(connection: Connection) -> None:
    """A row of keys per block of the stored records."""
    insert = text(
        "INSERT INTO log_fts_blocks (id, words) VALUES (:id, CAST(:words AS text[])) "
        "ON CONFLICT (id) DO UPDATE SET words = EXCLUDED.words"
    )
    for block, messages in stored_blocks(connection):
        connection.execute(insert, {"id": block, "words": array_literal(word_keys(messages))})
