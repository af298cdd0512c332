"""logs on PostgreSQL: words with a digit are indexed by a prefix and their length (logs/words.py index_key)

Every block's words are indexed again with the new keys, so that searches for such words find the blocks
stored before this migration too.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

from robofleet.logs import blocks
from robofleet.logs.words import WORD

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX log_fts_blocks_words")  # one build at the end is far cheaper than an update per block
    blocks.rebuild_words(op.get_bind())
    op.execute("CREATE INDEX log_fts_blocks_words ON log_fts_blocks USING gin (words)")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX log_fts_blocks_words")
    blocks.rebuild_words(op.get_bind(), _whole_word_keys)
    op.execute("CREATE INDEX log_fts_blocks_words ON log_fts_blocks USING gin (words)")


def _whole_word_keys(messages: list[str]) -> list[str]:
    """The keys of revision 0007: every word whole (cut at 64 characters)."""
    found = set(WORD.findall("\n".join(messages).lower()))
    return sorted({word[:64] for word in found})
