"""A connection held across operations (store.held): reused while busy, checked after a quiet spell, replaced
once lost, its transaction never checked (a check would end it); and a caller that stopped waiting for a
queued operation costs the thread that did it nothing."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future

import pytest
from sqlalchemy import Connection, text

from robofleet.errors import StoreUnavailable
from robofleet.store import Store
from robofleet.store.futures import settle
from robofleet.store.held import IDLE_CHECK_SECONDS, HeldConnection, HeldPostgresChannel


def terminate_other_connections(store: Store) -> None:
    with store.connection() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )


def count(store: Store) -> int:
    with store.connection() as connection:
        return int(connection.execute(text("SELECT count(*) FROM log_records")).scalar_one())


def insert(connection: Connection, message: str) -> None:
    connection.execute(
        text(
            "INSERT INTO log_records (time, level, source, message, fields, truncated) "
            "VALUES (CURRENT_TIMESTAMP, 20, 'robot:held', :message, '{}', false)"
        ),
        {"message": message},
    )


def test_a_held_connection_is_reused_and_its_transaction_commits_or_leaves_nothing(store: Store) -> None:
    opened: list[Connection] = []
    held = HeldConnection(store, on_connect=opened.append)
    try:
        connection = held.begin()
        assert held.begin() is connection  # inside its transaction: the same, unchecked
        insert(connection, "kept")
        held.commit()
        insert(held.begin(), "dropped")
        held.rollback()
        assert held.get() is connection and opened == [connection]
        assert count(store) == 1
        held.drop()
        replaced = held.get()
        assert replaced is not connection and opened == [connection, replaced]
        replaced.exec_driver_sql("SELECT 1")
    finally:
        held.release()


def test_a_transaction_open_past_a_quiet_spell_is_not_checked_away(store: Store) -> None:
    held = HeldConnection(store)
    try:
        connection = held.begin()
        insert(connection, "slow")
        time.sleep(IDLE_CHECK_SECONDS + 0.1)
        insert(held.begin(), "slower")
        held.commit()
    finally:
        held.release()
    assert count(store) == 2


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_held_connection_killed_by_the_server_is_found_out_after_a_quiet_spell(store: Store) -> None:
    held = HeldConnection(store)
    try:
        first = held.get()
        first.exec_driver_sql("SELECT 1")
        first.rollback()
        terminate_other_connections(store)
        time.sleep(IDLE_CHECK_SECONDS + 0.1)
        second = held.get()  # checked first: a new one
        assert second is not first
        second.exec_driver_sql("SELECT 1")
    finally:
        held.release()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_a_postgres_channel_fails_once_on_a_lost_connection_then_reconnects(store: Store) -> None:
    url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    channel = HeldPostgresChannel(url, timeout=5)
    try:
        assert [tuple(row) for row in await channel.execute("SELECT 1 AS one", (), rows=True)] == [(1,)]
        await asyncio.to_thread(terminate_other_connections, store)
        with pytest.raises(StoreUnavailable):
            await channel.execute("SELECT 1", ())
        assert await channel.execute("SELECT 2", ()) == []
    finally:
        await channel.close()


def test_settling_a_future_nobody_waits_for_any_more_is_no_error() -> None:
    cancelled: Future[int] = Future()
    assert cancelled.cancel()
    settle(cancelled, result=1)
    settle(cancelled, exception=RuntimeError("late"))
    answered: Future[int] = Future()
    settle(answered, result=2)
    settle(answered, result=3)  # answered already: the first answer stands
    assert answered.result() == 2
