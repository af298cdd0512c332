"""The embedded local agent of `robofleet serve`: a worker in this process, registered in the hub as "local".

Its robots live in sessions of their own and outlive `serve`; when `serve` comes back they are adopted again
(by pid and start time), their output is read on from where it was, runs that vanished meanwhile are lost, and
paused ones are recorded as they really are (frozen, holding at a checkpoint, or still on their way to one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from robofleet.agents.hub import LOCAL, AgentHub, LocalLink
from robofleet.agents.output import output_rows
from robofleet.agents.processes import become_subreaper
from robofleet.agents.worker import Worker
from robofleet.logs.service import LogService
from robofleet.robots.models import ACTIVE
from robofleet.robots.service import RobotsService
from robofleet.settings.model import Settings

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2


class LocalAgent:
    def __init__(self, settings: Settings, hub: AgentHub, logs: LogService, robots: RobotsService) -> None:
        self.settings = settings
        self.hub = hub
        self.logs = logs
        self.robots = robots
        self.worker = Worker(settings.store.data_dir / "agent-local", allowed_roots=settings.agents.allowed_roots)
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        become_subreaper()
        info = await asyncio.to_thread(self.worker.hello)
        self.hub.connect(LOCAL, LocalLink(self.worker), info)
        await self._lose_the_vanished()
        await self.robots.agent_back(LOCAL, info["runs"])  # pauses asked or lifted while serve was down
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        self.hub.disconnect(LOCAL)  # the robots keep running: the next start adopts them

    async def _lose_the_vanished(self) -> None:
        known = set(self.worker.processes.runs)

        def active_here() -> list[int]:
            from sqlalchemy import select

            from robofleet.robots.models import Run

            with self.robots.store.transaction() as session:
                return list(session.scalars(select(Run.id).where(Run.agent == LOCAL, Run.state.in_(ACTIVE))))

        for run_id in await asyncio.to_thread(active_here):
            if str(run_id) not in known:
                await self.robots.mark_lost(run_id, "its process was gone when the local agent started again")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self._ship_output()
                # Only runs whose output was read to its end, and so is stored by now: an exit never comes first.
                for ended in await asyncio.to_thread(self.worker.finished_runs):
                    run_id = ended.pop("run_id")
                    await self.hub.run_exited(LOCAL, run_id, ended)
                    await asyncio.to_thread(self.worker.collect, run_id)
                await asyncio.to_thread(self.worker.processes.reap_orphans)
            except Exception:
                log.exception("local agent watch failed; it goes on")

    async def _ship_output(self) -> None:
        """New output into the log store; its read positions are committed once it is durable there, so lines
        that could not be stored are read again (now, or by the next start after a crash)."""
        output = await asyncio.to_thread(self.worker.new_output)
        if not output.lines:
            return
        rows = output_rows(output.lines, LOCAL)
        try:
            await asyncio.wrap_future(self.logs.write(rows))
        except Exception:
            await asyncio.to_thread(self.worker.rewind_output)
            raise
        await asyncio.to_thread(self.worker.commit_output, output.positions)
