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

from alembic import op
from sqlalchemy import text

from robofleet.logs import blocks

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BLOCK_BITS = 12  # logs/blocks.py: BLOCK_ROWS = 1 << BLOCK_BITS


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    connection = op.get_bind()
    top = connection.execute(text("SELECT coalesce(max(id), 0) FROM log_records")).scalar_one()
    op.execute(f"CREATE SEQUENCE log_fts_block_seq START WITH {(int(top) >> BLOCK_BITS) + 1}")
    op.execute("CREATE TABLE log_fts_blocks (id bigint PRIMARY KEY, words text[] NOT NULL)")
    # Records already stored keep their ids: they are indexed by the block their id falls in.
    blocks.rebuild_words(connection)
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
