from __future__ import annotations

from alembic import context

engine = context.config.attributes["engine"]
# The whole schema, for autogenerate only (`upgrade` applies the frozen migrations and needs none); given by the caller
# (robofleet.domains.metadata()) so that the store never imports the domains.
metadata = context.config.attributes.get("metadata")


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
