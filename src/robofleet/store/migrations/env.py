from __future__ import annotations

from alembic import context

from robofleet.store.models import metadata

engine = context.config.attributes["engine"]


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    # Full-text search lives outside the models: FTS5 tables (SQLite), an expression GIN index (PostgreSQL).
    return not (name or "").startswith(("log_fts", "ix_log_records_message_fts"))


with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
