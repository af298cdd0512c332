"""The migrations that summarize stored log records carry frozen copies of the keys they write. Today's keys
must be the live code's, or the blocks a migration summarized would not be found by today's searches: when this
fails, the live keys changed, and the stored blocks need a new migration that summarizes them again."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import robofleet.store
from robofleet.logs import blocks
from robofleet.logs.ingest import Row
from robofleet.logs.words import indexed_words

VERSIONS = Path(robofleet.store.__file__).resolve().parent / "migrations" / "versions"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MESSAGES = [
    "order 12345678 shipped to Zürich",
    "ERROR in step_7: invoice INV-2026-000042 refused",
    "x" * 100 + " tail",
    "ÅNGSTRÖM ß straße 東京 δοκιμή a1b2c3d4e5",
    "",
]
ROWS = [
    Row(T0 + timedelta(seconds=n), level, source, run_id, message, {}, False)
    for n, (level, source, run_id, message) in enumerate(
        [
            (20, "robot:a", "run-1", MESSAGES[0]),
            (40, "robot:b", None, MESSAGES[1]),
            (10, "agent:pc-1", "run-2", MESSAGES[2]),
            (35, "orchestrator", None, MESSAGES[3]),
            (0, "robot:a", "run-1", MESSAGES[4]),
        ]
    )
]


def migration(prefix: str) -> ModuleType:
    (path,) = VERSIONS.glob(f"{prefix}_*.py")
    spec = importlib.util.spec_from_file_location(f"migration_{prefix}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_0009_summarizes_a_block_with_the_live_keys() -> None:
    assert migration("0009").block_keys(ROWS) == blocks.keys_of(ROWS)


def test_migrations_0008_and_0009_key_words_as_the_live_code_does() -> None:
    assert migration("0008").numbered_word_keys(MESSAGES) == indexed_words(MESSAGES)
    assert sorted(migration("0009").word_keys(MESSAGES)) == indexed_words(MESSAGES)


def test_migration_0007_keys_every_word_whole() -> None:
    keys = migration("0007").word_keys(MESSAGES)
    assert "12345678" in keys and "inv" in keys and "x" * 64 in keys and "東京" in keys
    assert keys == migration("0008").whole_word_keys(MESSAGES)
