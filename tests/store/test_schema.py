"""The store: migrations are idempotent and complete; SQLite runs in WAL with foreign keys."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from robofleet.orchestrator import prepare_store
from robofleet.settings.model import Settings
from robofleet.store import Store
from robofleet.store.migrate import current_revision, head_revision


def test_migrations_reach_head_and_rerun_cleanly(store: Store, settings: Settings) -> None:
    assert current_revision(store.engine) == head_revision(store.engine)
    prepare_store(store, settings)  # a second start changes nothing and fails on nothing
    assert current_revision(store.engine) == head_revision(store.engine)


def test_models_match_the_migrations(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from robofleet.domains import metadata as all_tables

    metadata = all_tables()

    def ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        # Full-text search lives outside the models: FTS5 tables (SQLite), the block word table (PostgreSQL).
        return not (name or "").startswith("log_fts")

    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": ours})
        differences = compare_metadata(context, metadata)
    assert differences == []


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sqlite_runs_in_wal_with_foreign_keys(store: Store) -> None:
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_first_start_creates_one_admin_and_its_password_file(store: Store, settings: Settings) -> None:
    path = settings.store.data_dir / "initial-admin-password"
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    before = path.read_text()
    prepare_store(store, settings)
    assert path.read_text() == before
