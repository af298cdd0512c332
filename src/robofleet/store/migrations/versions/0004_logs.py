"""logs: the log table, and full-text search over messages (SQLite FTS5, PostgreSQL tsvector GIN)

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import robofleet.store.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("time", robofleet.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_records")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_log_records_time", "log_records", ["time"])
    op.create_index("ix_log_records_run_id_id", "log_records", ["run_id", "id"])
    op.create_index("ix_log_records_source_id", "log_records", ["source", "id"])
    if op.get_context().dialect.name == "sqlite":
        # An external-content FTS5 index over log_records.message. Inserts index each batch with one
        # INSERT ... SELECT in the same transaction (logs/store_ops.py: a trigger per row is ~10x slower);
        # deletes, rare and batched, keep it in step through a trigger.
        op.execute("CREATE VIRTUAL TABLE log_fts USING fts5(message, content='log_records', content_rowid='id')")
        op.execute(
            "CREATE TRIGGER log_fts_delete AFTER DELETE ON log_records BEGIN "
            "INSERT INTO log_fts(log_fts, rowid, message) VALUES ('delete', old.id, old.message); END"
        )
    else:
        # A larger pending list lets inserts append to it and leaves the merge into the index to autovacuum.
        op.execute(
            "CREATE INDEX ix_log_records_message_fts ON log_records USING gin (to_tsvector('simple', message)) "
            "WITH (gin_pending_list_limit = 32768)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS log_fts_delete")
        op.execute("DROP TABLE IF EXISTS log_fts")
    op.drop_table("log_records")
