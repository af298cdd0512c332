"""The store handle: an engine, sessions from it, and the mapping of driver errors: StoreUnavailable for a lost
database, Invalid for a value the database cannot hold (a NUL in text, a number past 64 bits)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.errors import NumericValueOutOfRange
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from robofleet.errors import Invalid, StoreUnavailable
from robofleet.settings.model import StoreSettings
from robofleet.store.engine import build_engine, ping_within


class Store:
    """Owns the engine. `transaction()` is the one way services get a session."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.engine: Engine = build_engine(settings)
        self.dialect = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session inside one transaction: committed on success, rolled back on any error."""
        with unavailable_when_lost(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A bare connection for a quick read on a hot path (no ORM session), errors mapped like transaction()."""
        with unavailable_when_lost(), self.engine.connect() as connection:
            yield connection

    def ping(self) -> None:
        with self.transaction() as session:
            session.execute(text("SELECT 1"))

    def alive(self, connection: Connection) -> bool:
        """Whether a held connection (outside a transaction) still answers; asked within the connect timeout."""
        try:
            if self.dialect == "postgresql":
                ping_within(connection.connection.dbapi_connection, self.settings.connect_timeout)
            else:
                connection.exec_driver_sql("SELECT 1")
                connection.rollback()
        except (DBAPIError, DisconnectionError):
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()


# What the drivers raise when used directly (the log writer's raw cursors), beside SQLAlchemy's wrappers of it.
_UNREACHABLE = (OperationalError, PoolTimeout, psycopg.OperationalError, sqlite3.OperationalError)


@contextmanager
def unavailable_when_lost() -> Iterator[None]:
    """Driver errors that mean the database is unreachable become StoreUnavailable (503, retried by callers); a
    value the database cannot hold becomes Invalid (422, see `refused_value`)."""
    try:
        yield
    except _UNREACHABLE as exc:
        raise StoreUnavailable(f"the store is unavailable: {first_line(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"the store connection was lost: {first_line(exc)}") from exc
        if (refused := refused_value(exc)) is not None:
            raise refused from exc
        raise
    except (psycopg.DataError, sqlite3.DataError, OverflowError) as exc:
        if (refused := refused_value(exc)) is not None:
            raise refused from exc
        raise


# A Python int past SQLite's 64-bit INTEGER: sqlite3 raises OverflowError while binding, unwrapped by SQLAlchemy.
_SQLITE_OVERFLOW = "too large to convert to SQLite INTEGER"


def refused_value(error: BaseException) -> Invalid | None:
    """Invalid when `error` (SQLAlchemy's wrapper or the driver's own) is the store refusing a value the caller sent:
    a NUL character in text (PostgreSQL text cannot hold one; the SQLite engine refuses it alike) or an integer past
    64 bits (an id such as 9223372036854775808 in a path); None for any other error. The messages name no value:
    they reach the caller."""
    original = getattr(error, "orig", None) or error
    if isinstance(original, NumericValueOutOfRange) or (
        isinstance(original, OverflowError) and _SQLITE_OVERFLOW in str(original)
    ):
        return Invalid("a number is out of range: ids and counts are 64-bit integers", code="out_of_range")
    if isinstance(original, psycopg.DataError | sqlite3.DataError) and "NUL" in str(original):
        return Invalid("text must not contain the NUL character (\\u0000)", code="nul_character")
    return None


def as_unavailable(error: BaseException) -> BaseException:
    """`error` as StoreUnavailable when it means the database is unreachable, else itself (for errors caught and
    settled later, not raised through `unavailable_when_lost`)."""
    if isinstance(error, _UNREACHABLE):
        return StoreUnavailable(f"the store is unavailable: {first_line(error)}")
    return error


def first_line(exc: BaseException) -> str:
    """What a driver error says, in one line (the driver's own error under SQLAlchemy's wrapper)."""
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
