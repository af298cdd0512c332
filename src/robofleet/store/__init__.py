"""The store: SQLite or PostgreSQL through SQLAlchemy 2, migrated by Alembic."""

from robofleet.store.database import Store

__all__ = ["Store"]
