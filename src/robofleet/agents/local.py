"""The embedded local agent of `robofleet serve`: a worker in this process, registered in the hub as "local".

Its robots live in sessions of their own and outlive `serve`; when `serve` comes back they are adopted again
(by pid and start time), their output is read on from where it was, runs that vanished meanwhile are lost, and
paused ones are recorded as they really are (frozen, holding at a checkpoint, or still on their way to one).
"""

from __future__ import annotations

import asyncio
import logging
import time

from robofleet.agents.hub import LOCAL, AgentHub, LocalLink
from robofleet.agents.output import output_rows
from robofleet.agents.processes import become_subreaper
from robofleet.agents.worker import Worker
from robofleet.errors import RobofleetError
from robofleet.runtime import Loop
from robofleet.settings.model import Settings

log = logging.getLogger(__name__)
POLL_SECONDS = 0.2
MAX_POLL_SECONDS = 5.0  # how far the watch backs off while it fails (the store away): output waits in the spool


class LocalAgent:
    def __init__(self, settings: Settings, hub: AgentHub) -> None:
        self.settings = settings
        self.hub = hub
        self.worker = Worker(settings.store.data_dir / "agent-local", allowed_roots=settings.agents.allowed_roots)
        self.watcher = Loop("local-agent-watch", POLL_SECONDS, self._watch_once)
        self._failing_since: float | None = None

    async def start(self) -> None:
        become_subreaper()
        loop = asyncio.get_running_loop()
        self.worker.displays.on_change = lambda: loop.call_soon_threadsafe(self.hub.sessions_changed, LOCAL)
        await asyncio.to_thread(self.worker.start)
        info = await asyncio.to_thread(self.worker.hello)
        self.hub.connect(LOCAL, LocalLink(self.worker), info)
        known = set(self.worker.processes.runs)
        await self.hub.runs_vanished(LOCAL, known, "its process was gone when the local agent started again")
        await self.hub.agent_back(LOCAL, info["runs"])  # pauses asked or lifted while serve was down
        self.watcher.start()

    async def stop(self) -> None:
        await self.watcher.stop()
        self.hub.disconnect(LOCAL)  # the robots keep running: the next start adopts them
        await asyncio.to_thread(self.worker.close)  # so do their displays

    async def _watch_once(self) -> None:
        """One pass of the watch. While passes fail (the store away, mostly) that is said once, without a traceback,
        and the watch backs off up to MAX_POLL_SECONDS; once a pass succeeds again, that is said once too."""
        try:
            await self._watch()
        except Exception as exc:
            self._failed(exc)
            return
        if self._failing_since is not None:
            log.info("the local agent's watch works again, after %.1f s", time.monotonic() - self._failing_since)
            self._failing_since = None
            self.watcher.period = POLL_SECONDS

    def _failed(self, exc: Exception) -> None:
        self.watcher.period = min(self.watcher.period * 2, MAX_POLL_SECONDS)
        if self._failing_since is not None:
            return
        self._failing_since = time.monotonic()
        reason = exc.message if isinstance(exc, RobofleetError) else f"{type(exc).__name__}: {exc}"
        log.warning(
            "the local agent's watch fails (%s); its robots' output and exits wait, and it tries again every "
            "%g s at most until it works",
            reason[:300],
            MAX_POLL_SECONDS,
        )
        log.debug("the local agent's watch failed", exc_info=exc)

    async def _watch(self) -> None:
        await self._ship_output()
        # Only runs whose output was read to its end, and so is stored by now: an exit never comes first.
        for ended in await asyncio.to_thread(self.worker.finished_runs):
            run_id = ended.pop("run_id")
            await self.hub.run_exited(LOCAL, run_id, ended)
            await asyncio.to_thread(self.worker.collect, run_id)
        await asyncio.to_thread(self.worker.processes.reap_orphans)

    async def _ship_output(self) -> None:
        """New output into the log store; its read positions are committed once it is durable there, so lines
        that could not be stored are read again (now, or by the next start after a crash)."""
        output = await asyncio.to_thread(self.worker.new_output)
        if not output.lines:
            return
        rows = output_rows(output.lines, LOCAL)
        try:
            await self.hub.store_output(rows)
        except Exception:
            await asyncio.to_thread(self.worker.rewind_output)
            raise
        await asyncio.to_thread(self.worker.commit_output, output.positions)
