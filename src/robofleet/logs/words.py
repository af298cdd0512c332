"""What "the message contains these words" means, in one place: the live tail, PostgreSQL's block index and its
recheck all use it, so a search and a tail of the same filters agree.

A word is a run of `\\w` characters (letters, digits, underscore; Unicode-aware), compared lower-cased. ASCII
text, nearly every log line, takes a path five times faster than the regular expression, with the same words.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

WORD = re.compile(r"\w+")
# Every ASCII character that is not a word character becomes a space, so str.split() yields the \w+ runs.
_ASCII_SEPARATORS = str.maketrans(
    {char: " " for char in (chr(code) for code in range(128)) if not (char.isalnum() or char == "_")}
)
# GIN keys must stay well under a page; longer words are indexed by their prefix (rechecks compare them whole).
INDEXED_LENGTH = 64
# A word with a digit that is longer than this (a counter, an order number, a hex id) is indexed by its first
# NUMBERED_PREFIX characters and its length. Log lines are full of such words, nearly each one new: as keys of
# their own they made the index grow by a key per record, and ingest slow down as it grew. Consecutive numbers
# share a key instead; a search for one still finds few blocks, and the recheck compares whole words.
NUMBERED_PREFIX = 5
_HAS_DIGIT = re.compile(r"\d").search


def _words(lowered: str) -> Iterable[str]:
    if lowered.isascii():
        return lowered.translate(_ASCII_SEPARATORS).split()
    return WORD.findall(lowered)


def words_of(text: str) -> list[str]:
    """The distinct words of `text`, lower-cased, in order of first appearance."""
    return list(dict.fromkeys(_words(text.lower())))


def index_key(word: str) -> str:
    if len(word) > NUMBERED_PREFIX and _HAS_DIGIT(word):
        return f"{word[:NUMBERED_PREFIX]}~{len(word)}"  # "~" is no word character: no word has this key
    return word if len(word) <= INDEXED_LENGTH else word[:INDEXED_LENGTH]


def _keys(words: Iterable[str]) -> list[str]:
    return sorted({index_key(word) for word in words})


def indexed_words(messages: Iterable[str]) -> list[str]:
    """The index keys of a block of messages: one pass over them all is far cheaper than one per message."""
    return _keys(set(_words("\n".join(messages).lower())))


def query_keys(words: list[str]) -> list[str]:
    return _keys(words)


# Keys of what else a block holds, beside its words: each starts with "~", which no word key does. A source or a
# run id by a digest (any characters, one token for FTS5); a level by the steps it reaches (a block with a
# WARNING has ~l10, ~l20 and ~l30), so that "at least WARNING" is one key.
LEVEL_STEPS = (10, 20, 30, 40, 50)


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def source_key(source: str) -> str:
    return "~s" + _digest(source)


def run_key(run_id: str) -> str:
    return "~r" + _digest(run_id)


def level_keys(top_level: int) -> list[str]:
    return [f"~l{step}" for step in LEVEL_STEPS if top_level >= step]


def min_level_key(min_level: int) -> str | None:
    """The key every block holding a record of at least `min_level` has (None: every block qualifies)."""
    reached = [step for step in LEVEL_STEPS if step <= min_level]
    return f"~l{reached[-1]}" if reached else None


def array_literal(keys: list[str]) -> str:
    """PostgreSQL's text form of a text[] of keys. Keys are \\w runs and "~": no quote, backslash, comma or brace
    to escape; each is quoted so that a word like "null" stays a word."""
    return '{"' + '","'.join(keys) + '"}' if keys else "{}"


def contains_all(message: str, words: list[str]) -> bool:
    if not words:
        return True
    present = set(_words(message.lower()))
    return all(word in present for word in words)
