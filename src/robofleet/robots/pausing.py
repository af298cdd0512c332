"""Pausing runs. A robot that said it pauses at checkpoints (robofleet.sdk) is asked to and holds at its next one,
alive; its run is paused once the agent sees it there. A robot that does not get there within its
`safe_stop_timeout` (the time a step may take), and every robot without checkpoints, has its whole process tree
frozen instead. The "paused" transition says which: "pause": "cooperative" or "frozen" (with a "reason" when a
cooperative pause fell back to freezing).

The state changes go through the service's `update`, like every run change; this module holds the pauses in
flight and the decisions about them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from robofleet.agents.hub import AgentHub
from robofleet.errors import RobofleetError
from robofleet.robots.models import PAUSED, RUNNING
from robofleet.robots.schemas import RunOut
from robofleet.robots.store_ops import PauseRecord
from robofleet.runtime import Timers
from robofleet.store.base import utcnow

log = logging.getLogger("robofleet.robots.service")
ASKED, COOPERATIVE, FROZEN = "asked", "cooperative", "frozen"
FIRST_POLL, MAX_POLL = 0.05, 0.5  # seconds between looks at a robot on its way to a checkpoint

Update = Callable[..., Awaitable[RunOut | None]]
Settling = Literal["paused", "running", "wait", "forget"]


def settling(state: str, pause_asked: bool, reported: str | None) -> Settling | None:
    """What a run's record needs once its agent (re)tells how the run really is, say after a restart of `serve`
    between a command and its record: the processes are the truth. None when record and processes agree."""
    if state == RUNNING and reported in (COOPERATIVE, FROZEN):
        return "paused"
    if state == RUNNING and reported == ASKED:
        return "wait"
    if state == RUNNING and pause_asked and reported is None:
        return "forget"
    if state == PAUSED and reported is None:
        return "running"
    return None


class Pauses:
    def __init__(self, hub: AgentHub, update: Update) -> None:
        self.hub = hub
        self.update = update
        self._waiting = Timers()  # by run id: the robots watched on their way to a checkpoint

    async def pause(self, run_id: int, agent: str, by: str, bound: float) -> RunOut | None:
        """Paused at once (frozen) or asked to pause at its next checkpoint (`pause_asked_at` set, still
        running); None when the run left "running" meanwhile."""
        reply = await self.hub.command(
            agent, "process.signal", {"run_id": str(run_id), "action": "pause", "checkpoint": True}
        )
        mode = reply.get("pause") or FROZEN  # an agent without checkpoint support froze it
        if mode != ASKED:
            return await self.update(run_id, by, state=PAUSED, only_from=(RUNNING,), note={"pause": mode})
        asked_at = utcnow()
        out = await self.update(run_id, by, only_from=(RUNNING,), pause_asked_at=asked_at)
        if out is not None:
            self.watch(run_id, agent, by, bound, asked_at)
        return out

    async def resume(self, run_id: int, agent: str, by: str) -> RunOut | None:
        """Thawed or let go from its checkpoint; a pause still waiting for a checkpoint is called off."""
        self.cancel(run_id)
        await self.hub.command(agent, "process.signal", {"run_id": str(run_id), "action": "resume"})
        # Paused, or still on its way: the wait may have ended either way just before it was called off.
        out = await self.update(run_id, by, state=RUNNING, only_from=(PAUSED,))
        return out or await self.update(run_id, by, only_from=(RUNNING,), pause_asked_at=None)

    def cancel(self, run_id: int) -> None:
        self._waiting.cancel(run_id)

    async def stop(self) -> None:
        await self._waiting.stop()

    def watch(self, run_id: int, agent: str, by: str, bound: float, asked_at: datetime) -> None:
        """Look at the robot until it holds at a checkpoint; freeze it when `bound` seconds passed since
        `asked_at`. Runs in the background: nothing waits for it."""
        deadline = asked_at.timestamp() + bound
        self._waiting.set(run_id, 0, lambda: self._wait_for_checkpoint(run_id, agent, by, bound, deadline))

    async def settle(self, agent: str, reported: list[dict[str, Any]], known: dict[str, PauseRecord]) -> None:
        """Align the records of `agent`'s runs (`known`, by run id) with what it reported. Never waits for the
        agent: this runs while it is saying hello."""
        for run in reported:
            run_id = str(run.get("run_id"))
            if "pause" not in run or run_id not in known:
                continue  # an agent that knows nothing of checkpoints, or a run not paused nor running
            state, asked_at, bound = known[run_id]
            number = int(run_id)
            by = f"agent:{agent}"
            needed = settling(state, asked_at is not None, run["pause"])
            if needed == "paused":
                await self.update(number, by, state=PAUSED, only_from=(RUNNING,), note={"pause": run["pause"]})
            elif needed == "running":
                await self.update(number, by, state=RUNNING, only_from=(PAUSED,))
            elif needed == "forget":
                await self.update(number, by, only_from=(RUNNING,), pause_asked_at=None)
            elif needed == "wait" and number not in self._waiting:
                if asked_at is None:
                    asked_at = utcnow()
                    await self.update(number, by, only_from=(RUNNING,), pause_asked_at=asked_at)
                self.watch(number, agent, by, bound, asked_at)

    async def _wait_for_checkpoint(self, run_id: int, agent: str, by: str, bound: float, deadline: float) -> None:
        args = {"run_id": str(run_id)}
        interval = FIRST_POLL
        try:
            mode: str | None = ASKED
            while mode == ASKED and time.time() < deadline:
                await asyncio.sleep(min(interval, max(deadline - time.time(), 0.0)))
                interval = min(interval * 1.5, MAX_POLL)
                state = await self.hub.command(agent, "process.state", args)
                mode = state.get("pause") if state.get("alive") else None
            if mode == ASKED:
                mode = (await self.hub.command(agent, "process.signal", {**args, "action": "freeze"})).get("pause")
        except RobofleetError as exc:
            # The agent is away or lost the run: its next hello settles the pause (settle), or its end does.
            log.warning("run %s: pause not settled: %s", run_id, exc.message, extra={"run_id": str(run_id)})
            return
        if mode == COOPERATIVE:
            await self.update(run_id, by, state=PAUSED, only_from=(RUNNING,), note={"pause": COOPERATIVE})
        elif mode == FROZEN:
            reason = f"no checkpoint reached within {bound:g} s: the process tree was frozen"
            log.warning("run %s: %s", run_id, reason, extra={"run_id": str(run_id)})
            await self.update(run_id, by, state=PAUSED, only_from=(RUNNING,), note={"pause": FROZEN, "reason": reason})
        else:  # the robot ended (its end is recorded apart) or the request went: nothing waits any more
            await self.update(run_id, by, only_from=(RUNNING,), pause_asked_at=None)
