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

from alembic import op

from robofleet.logs import blocks

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

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
        blocks.rebuild(op.get_bind())
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
    blocks.rebuild(op.get_bind())


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX log_fts_blocks_words")
        op.execute("ALTER TABLE log_fts_blocks DROP COLUMN min_time, DROP COLUMN max_time")
        blocks.rebuild_words(op.get_bind())
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
