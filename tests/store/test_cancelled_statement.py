"""A caller cancelled in the middle of a statement on the held PostgreSQL channel is cancelled: not a store outage
that a retry loop swallows (a stopping activity processor once waited for ever on such a swallowed cancel)."""

from __future__ import annotations

import asyncio

import pytest

from robofleet.store import Store
from robofleet.store.held import HeldPostgresChannel


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_a_cancelled_statement_cancels_its_caller_and_the_channel_goes_on(store: Store) -> None:
    url = store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    channel = HeldPostgresChannel(url, timeout=30)
    try:
        for delay in (0.0, 0.05, 0.2):  # before, while and well after the statement reached the server
            task = asyncio.create_task(channel.execute("SELECT pg_sleep(10)", ()))
            await asyncio.sleep(delay)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)  # the server's sleep is cancelled too: no 10 s wait
        assert [tuple(row) for row in await channel.execute("SELECT 7 AS seven", (), rows=True)] == [(7,)]
    finally:
        await channel.close()
