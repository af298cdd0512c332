"""The runtime's loops, timers and tasks: each does its work and is gone after its owner's stop()."""

from __future__ import annotations

import asyncio
import logging

import pytest

from robofleet.errors import StoreUnavailable
from robofleet.runtime import Loop, Tasks, Timers


async def test_a_loop_runs_each_period_wakes_at_once_and_outlives_a_failed_pass(
    caplog: pytest.LogCaptureFixture,
) -> None:
    passes: list[int] = []

    async def once() -> None:
        passes.append(len(passes))
        if len(passes) == 2:
            raise RuntimeError("a bad pass")
        if len(passes) == 3:
            raise StoreUnavailable("the database is away")

    loop = Loop("test", 0.05, once)
    loop.start()
    await asyncio.sleep(0.18)
    assert len(passes) >= 3 and loop.running
    slow = Loop("slow", 60, once)
    slow.start()
    await asyncio.sleep(0.01)
    before = len(passes)
    slow.wake()
    await asyncio.sleep(0.01)
    assert len(passes) > before  # woken: no wait for its 60 s period
    await loop.stop()
    await slow.stop()
    after = len(passes)
    await asyncio.sleep(0.1)
    assert len(passes) == after and not loop.running
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "a bad pass" in str(tracebacks[0].exc_info)  # an outage says one line, no trace
    assert any("waits for the store" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_a_gated_loop_passes_only_when_its_gate_opens() -> None:
    passes: list[str] = []
    leading = False

    async def gate() -> bool:
        return leading

    async def once() -> None:
        passes.append("pass")

    loop = Loop("gated", 0.02, once, gate=gate)
    loop.start()
    await asyncio.sleep(0.1)
    assert passes == []
    leading = True
    await asyncio.sleep(0.1)
    await loop.stop()
    assert passes


async def test_timers_are_keyed_replaced_and_cancelled() -> None:
    fired: list[str] = []

    async def fire(name: str) -> None:
        fired.append(name)

    timers = Timers()
    timers.set("a", 0.05, lambda: fire("first"))
    timers.set("a", 0.05, lambda: fire("second"))  # replaces the first
    timers.set("b", 0.05, lambda: fire("b"))
    timers.cancel("b")
    timers.set("c", 10, lambda: fire("never"))
    await asyncio.sleep(0.15)
    assert fired == ["second"] and "a" not in timers and "c" in timers
    await timers.stop()
    assert "c" not in timers


async def test_tasks_are_cancelled_by_their_owner() -> None:
    tasks = Tasks()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = tasks.spawn(forever(), name="forever")
    await started.wait()
    assert len(tasks) == 1
    await tasks.stop()
    assert task.cancelled() and len(tasks) == 0
