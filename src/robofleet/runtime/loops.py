"""Background work with an owner: a periodic `Loop`, keyed `Timers` and a set of owned `Tasks`.

Each is cancelled by its owner's `stop()`, so a stopped service leaves nothing running. A deadline that must hold
across a restart is not a timer: it is a stored column that a `Loop` acts on (robots' stop and max-runtime
deadlines); a timer only makes the loop act at once instead of at its next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from typing import Any

from robofleet.errors import StoreUnavailable

log = logging.getLogger(__name__)

Gate = Callable[[], Awaitable[bool]]


class Tasks:
    """Tasks a service started and owns: each is forgotten when done, and `stop()` cancels those still running."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._running.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    def __len__(self) -> int:
        return len(self._running)

    async def stop(self) -> None:
        """Cancel every task still running and wait until each has ended. A task may not stop its own owner."""
        current = asyncio.current_task()
        running = [task for task in self._running if task is not current]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._running.clear()


class Timers:
    """One pending call per key: `set` replaces the key's earlier timer (cancelled, even in the middle of its job),
    `cancel` drops it, `stop` drops all. A job of a few seconds (watching a robot on its way to a checkpoint) is
    a timer of 0 seconds: keyed, replaced and cancelled the same way."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, asyncio.Task[None]] = {}

    def set(self, key: Hashable, seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
        self.cancel(key)

        async def later() -> None:
            try:
                await asyncio.sleep(max(seconds, 0.0))
                await job()
            except Exception:
                log.exception("timer %r failed", key)
            finally:
                if self._pending.get(key) is asyncio.current_task():
                    del self._pending[key]

        self._pending[key] = asyncio.get_running_loop().create_task(later(), name=f"timer {key!r}")

    def cancel(self, key: Hashable) -> None:
        """Drop the key's timer; a timer that cancels itself (from its own job) finishes its job."""
        timer = self._pending.pop(key, None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._pending

    async def stop(self) -> None:
        timers = list(self._pending.values())
        self._pending.clear()
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)


class Loop:
    """Calls `run_once` every `period` seconds from `start()` until `stop()`; `wake()` makes the next pass come at
    once. A pass that fails is logged and the loop goes on. With a `gate` (e.g. "this replica leads"), a pass runs
    only when the gate says so."""

    def __init__(
        self,
        name: str,
        period: float,
        run_once: Callable[[], Awaitable[Any]],
        *,
        gate: Gate | None = None,
        wait_first: bool = False,
    ) -> None:
        self.name = name
        self.period = period
        self.run_once = run_once
        self.gate = gate
        self.wait_first = wait_first  # the first pass comes a period after the start, not at once
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._woken = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"loop {self.name}")

    def wake(self) -> None:
        self._woken.set()

    def cancel(self) -> None:
        """Stop without waiting for the pass in flight to end (call on the event loop's thread)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        if self.wait_first:
            await self._wait()
        while True:
            try:
                if self.gate is None or await self.gate():
                    await self.run_once()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:  # an outage: said once per pass, without a traceback
                log.warning("loop %s waits for the store: %s", self.name, exc.message)
            except Exception:
                log.exception("loop %s: a pass failed; it goes on", self.name)
            await self._wait()

    async def _wait(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for loses a cancellation that comes as the wait ends (a wake),
        # and a loop that missed its stop would run for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.period):
                await self._woken.wait()
        self._woken.clear()
