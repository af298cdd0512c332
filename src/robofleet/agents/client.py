"""`robofleet agent`: connects out to the orchestrator (so it works behind NAT), says hello, heartbeats, runs
commands through its worker, and ships its robots' output and exits. It reconnects with backoff and jitter;
what it could not deliver while away goes with the next hello. Its robots keep running meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from pathlib import Path
from typing import Any

import psutil
import websockets

from robofleet.agents.processes import become_subreaper
from robofleet.agents.worker import Worker

log = logging.getLogger("robofleet.agent")
HEARTBEAT_SECONDS = 10.0
WATCH_SECONDS = 0.2
MAX_BACKOFF = 30.0
UNSENT_LIMIT = 100_000


class AgentClient:
    def __init__(
        self, server: str, token: str, name: str, state_dir: Path, allowed_roots: list[Path] | None = None
    ) -> None:
        base = server.rstrip("/")
        self.url = (
            "wss://" + base[8:] if base.startswith("https://") else "ws://" + base.removeprefix("http://")
        ) + "/api/v1/agents/connect"
        self.token = token
        self.name = name
        self.worker = Worker(state_dir, allowed_roots=allowed_roots)
        self.unsent_results: dict[str, dict[str, Any]] = {}
        self.unsent_exits: list[dict[str, Any]] = []
        self.unsent_output: deque[dict[str, Any]] = deque(maxlen=UNSENT_LIMIT)
        self.connected = asyncio.Event()

    async def run_forever(self) -> None:
        become_subreaper()
        backoff = 0.5
        while True:
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self.token}"},
                    ping_interval=20,
                    max_size=16 * 1024 * 1024,
                ) as socket:
                    backoff = 0.5
                    await self._session(socket)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.connected.clear()
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                if code in (4401, 4403):
                    log.error("the orchestrator refused this agent's token: %s", exc)
                delay = backoff * (0.5 + random.random())
                log.warning("disconnected (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _session(self, socket: Any) -> None:
        hello = {
            "type": "hello",
            "name": self.name,
            **await asyncio.to_thread(self.worker.hello),
            "results": [{"id": k, "outcome": v} for k, v in self.unsent_results.items()],
            "exited": list(self.unsent_exits),
        }
        await socket.send(json.dumps(hello))
        self.unsent_results.clear()
        self.unsent_exits.clear()
        self.connected.set()
        log.info("connected to %s as %s", self.url, self.name)
        tasks = {asyncio.create_task(self._watch(socket)), asyncio.create_task(self._heartbeat(socket))}
        try:
            async for raw in socket:
                message = json.loads(raw)
                if message.get("type") == "command":
                    running = asyncio.create_task(self._execute(socket, message))
                    tasks.add(running)
                    running.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            self.connected.clear()

    async def _execute(self, socket: Any, message: dict[str, Any]) -> None:
        outcome = await asyncio.to_thread(self.worker.execute, message["id"], message["name"], message.get("args", {}))
        try:
            await socket.send(json.dumps({"type": "result", "id": message["id"], "outcome": outcome}))
        except websockets.WebSocketException:
            self.unsent_results[message["id"]] = outcome

    async def _watch(self, socket: Any) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            ended = await asyncio.to_thread(self.worker.finished_runs)
            lines = await asyncio.to_thread(self.worker.new_output)
            self.unsent_output.extend(lines)
            if self.unsent_output:
                batch = list(self.unsent_output)
                try:
                    await socket.send(json.dumps({"type": "output", "lines": batch}))
                    self.unsent_output.clear()
                except websockets.WebSocketException:
                    return
            for exited in ended:
                run_id = exited.pop("run_id")
                try:
                    await socket.send(json.dumps({"type": "exited", "run_id": run_id, "outcome": exited}))
                except websockets.WebSocketException:
                    self.unsent_exits.append({"run_id": run_id, **exited})
                await asyncio.to_thread(self.worker.collect, run_id)
            await asyncio.to_thread(self.worker.processes.reap_orphans)

    async def _heartbeat(self, socket: Any) -> None:
        while True:
            stats = {
                "cpu_percent": psutil.cpu_percent(interval=None),
                "memory_percent": psutil.virtual_memory().percent,
                "runs": len(self.worker.processes.runs),
            }
            with contextlib.suppress(websockets.WebSocketException):
                await socket.send(json.dumps({"type": "heartbeat", "stats": stats}))
            await asyncio.sleep(HEARTBEAT_SECONDS)
