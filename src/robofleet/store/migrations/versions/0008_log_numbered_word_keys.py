"""logs on PostgreSQL: words with a digit are indexed by a prefix and their length (logs/words.py index_key)

Every block's words are indexed again with the new keys, so that searches for such words find the blocks
stored before this migration too.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from alembic import op
from sqlalchemy import Connection, text

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Frozen here as this revision defined them (a migration means the same thing for ever; live code moves on).
BLOCK_BITS = 12  # a record's block is its id >> BLOCK_BITS
WORD = re.compile(r"\w+")
INDEXED_LENGTH = 64  # GIN keys must stay well under a page: longer words are keyed by their prefix
NUMBERED_PREFIX = 5  # a word with a digit longer than this is keyed by its first 5 characters and its length
HAS_DIGIT = re.compile(r"\d").search


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX log_fts_blocks_words")  # one build at the end is far cheaper than an update per block
    index_words(op.get_bind(), numbered_word_keys)
    op.execute("CREATE INDEX log_fts_blocks_words ON log_fts_blocks USING gin (words)")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX log_fts_blocks_words")
    index_words(op.get_bind(), whole_word_keys)
    op.execute("CREATE INDEX log_fts_blocks_words ON log_fts_blocks USING gin (words)")


def words(messages: Iterable[str]) -> set[str]:
    return set(WORD.findall("\n".join(messages).lower()))


def numbered_word_keys(messages: Iterable[str]) -> list[str]:
    """The keys of this revision: a word with a digit and more than NUMBERED_PREFIX characters by its prefix and
    its length ("~" is no word character: no word has such a key), any other word whole."""
    keys = set()
    for word in words(messages):
        if len(word) > NUMBERED_PREFIX and HAS_DIGIT(word):
            keys.add(f"{word[:NUMBERED_PREFIX]}~{len(word)}")
        else:
            keys.add(word[:INDEXED_LENGTH])
    return sorted(keys)


def whole_word_keys(messages: Iterable[str]) -> list[str]:
    """The keys of revision 0007: every word whole (cut at INDEXED_LENGTH)."""
    return sorted({word[:INDEXED_LENGTH] for word in words(messages)})


def array_literal(keys: list[str]) -> str:
    """A text[] literal; keys are \\w runs and "~", with nothing to escape."""
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


def index_words(connection: Connection, keys_of: Callable[[list[str]], list[str]]) -> None:
    """Each block's row of keys replaced by `keys_of` its messages."""
    insert = text(
        "INSERT INTO log_fts_blocks (id, words) VALUES (:id, CAST(:words AS text[])) "
        "ON CONFLICT (id) DO UPDATE SET words = EXCLUDED.words"
    )
    for block, messages in stored_blocks(connection):
        connection.execute(insert, {"id": block, "words": array_literal(keys_of(messages))})
