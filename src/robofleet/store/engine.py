"""Creates the SQLAlchemy engine for SQLite (WAL, foreign keys) or PostgreSQL (psycopg 3)."""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from robofleet.settings.model import StoreSettings
from robofleet.store.files import PRIVATE_DIR, private_database, private_dir

# TCP keepalives find a dead peer under an idle or waiting connection (a firewall that dropped the flow, a
# partitioned network); tcp_user_timeout bounds how long sent data may stay unacknowledged. Without them a lost
# server holds a query for the kernel's ~15 minutes of retransmissions.
PG_TCP_OPTIONS = {
    "keepalives": 1,
    "keepalives_idle": 15,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def build_engine(store: StoreSettings) -> Engine:
    """The engine of `store`. Its errors never carry a statement's parameters (hide_parameters): a robot's env
    secrets would otherwise reach a traceback, serve's log and the log store that viewers read."""
    url = make_url(store.effective_url())
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            private_dir(store.data_dir)
            database = Path(url.database)
            database.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
            private_database(database)
        engine = create_engine(
            url,
            connect_args={"timeout": 15, "check_same_thread": False},
            pool_size=store.pool_size,
            pool_pre_ping=True,
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "before_cursor_execute", _refuse_nul)
        return engine
    engine = create_engine(
        url,
        connect_args={"connect_timeout": store.connect_timeout, **PG_TCP_OPTIONS},
        pool_size=store.pool_size,
        max_overflow=store.pool_size,
        pool_timeout=store.connect_timeout,
        # Not pool_pre_ping: its ping waits for ever on a server that stopped answering; ours gives up.
        pool_pre_ping=False,
        hide_parameters=True,
    )
    event.listen(engine, "connect", _mark_fresh)
    event.listen(engine, "checkout", _ping_on_checkout(store.connect_timeout))
    return engine


def _mark_fresh(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["fresh"] = True


def _ping_on_checkout(timeout: float) -> Any:
    def ping(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection) -> None:
        """A pooled connection is pinged before use (a fresh one was just proven). A failed or unanswered ping
        drops every pooled connection, since they all lead to that server, and the pool connects anew."""
        if record.info.pop("fresh", False):
            return
        try:
            ping_within(dbapi_connection, timeout)
        except DisconnectionError as exc:
            exc.invalidate_pool = True
            raise

    return ping


def ping_within(dbapi_connection: Any, timeout: float) -> None:
    """`SELECT 1` on an idle psycopg connection, given up after `timeout` seconds; raises DisconnectionError.

    psycopg has no deadline for a query, so a server that stopped answering (frozen, or behind a network that
    drops packets) would hold the caller for ever: the ping goes through libpq's non-blocking calls instead."""
    pgconn = dbapi_connection.pgconn
    if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status != pq.TransactionStatus.IDLE:
        raise DisconnectionError("the connection is not idle and usable")
    deadline = time.monotonic() + timeout
    ok = True
    try:
        pgconn.send_query(b"SELECT 1")
        while pgconn.flush():
            _wait(pgconn.socket, write=True, deadline=deadline, timeout=timeout)
        pgconn.consume_input()
        while pgconn.is_busy():
            _wait(pgconn.socket, write=False, deadline=deadline, timeout=timeout)
            pgconn.consume_input()
        while (result := pgconn.get_result()) is not None:
            ok = ok and result.status == pq.ExecStatus.TUPLES_OK
    except (psycopg.Error, OSError) as exc:
        raise DisconnectionError(f"the database connection failed a ping: {exc}") from exc
    if not ok:
        raise DisconnectionError("the database answered a ping with an error")


def _wait(fileno: int, *, write: bool, deadline: float, timeout: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        if hasattr(select, "poll"):  # one system call, and no FD_SETSIZE limit
            poller = select.poll()
            poller.register(fileno, select.POLLOUT if write else select.POLLIN)
            if poller.poll(remaining * 1000):
                return
        else:
            readers, writers, _ = select.select([] if write else [fileno], [fileno] if write else [], [], remaining)
            if readers or writers:
                return
    raise DisconnectionError(f"the database did not answer a ping within {timeout:g} s")


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a process crash; only an OS crash may lose the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _refuse_nul(
    _connection: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _executemany: bool
) -> None:
    """SQLite would store a NUL in text, which PostgreSQL refuses: refused here too (as the DataError psycopg
    raises), so that a value is taken or refused alike on both stores."""
    if _holds_nul(parameters):
        raise sqlite3.DataError("text fields cannot contain NUL (0x00) bytes")


def _holds_nul(parameters: Any) -> bool:
    """Whether a statement's parameters (a row of them, by name or place, or a list of rows) hold a NUL in text."""
    if isinstance(parameters, str):
        return "\x00" in parameters
    if isinstance(parameters, Mapping):
        parameters = parameters.values()
    elif not isinstance(parameters, list | tuple):
        return False
    return any(_holds_nul(value) for value in parameters)
