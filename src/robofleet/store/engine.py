"""Creates the SQLAlchemy engine for SQLite (WAL, foreign keys) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from robofleet.settings.model import StoreSettings


def build_engine(store: StoreSettings) -> Engine:
    url = make_url(store.effective_url())
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            store.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 15, "check_same_thread": False},
            pool_size=store.pool_size,
            pool_pre_ping=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url,
        connect_args={"connect_timeout": store.connect_timeout},
        pool_size=store.pool_size,
        max_overflow=store.pool_size,
        pool_timeout=store.connect_timeout,
        pool_pre_ping=True,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash; only an OS crash may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()
