"""`robofleet agent`: connects out to the orchestrator (so it works behind NAT), says hello, heartbeats, runs
commands through its worker, and ships its robots' output and exits. It reconnects with backoff and jitter;
its robots and the commands it is running carry on meanwhile.

Nothing is lost or doubled by a reconnect. A command runs once per id, however often it is sent; a result that
could not be delivered goes with the next hello. Output and exits are numbered and kept until the orchestrator
acknowledges them, sent again after a reconnect, and counted once there. Output is marked read in the runs'
spool files only once acknowledged, so an agent killed before that reads it again when it starts. A link that
stops answering pings for a few heartbeats is given up, since a pulled cable closes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import uuid
from pathlib import Path
from typing import Any

import psutil
import websockets

from robofleet.agents.processes import become_subreaper
from robofleet.agents.spool import Positions
from robofleet.agents.worker import Worker

log = logging.getLogger("robofleet.agent")
# Until the orchestrator's welcome says otherwise.
HEARTBEAT_SECONDS = 10.0
OFFLINE_AFTER_SECONDS = 30.0
WELCOME_SECONDS = 30.0
WATCH_SECONDS = 0.2
MIN_BACKOFF = 0.5
MAX_BACKOFF = 30.0
LINES_PER_MESSAGE = 1000
UNACKNOWLEDGED_LINES = 100_000
# The orchestrator's limit too (serve's ws_max_size): above the worker's largest answer (MAX_RESULT_BYTES), so an
# answer never ends the connection.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class Outbox:
    """Messages the orchestrator must count once (output, exits): numbered, in order, kept until acknowledged."""

    def __init__(self) -> None:
        self.messages: dict[int, dict[str, Any]] = {}
        self.last_seq = 0
        self.lines = 0
        self.added = asyncio.Event()

    @property
    def full(self) -> bool:
        """Past this, output waits in the runs' spool files rather than in memory."""
        return self.lines >= UNACKNOWLEDGED_LINES

    def add(self, message: dict[str, Any]) -> None:
        self.last_seq += 1
        self.messages[self.last_seq] = {**message, "seq": self.last_seq}
        self.lines += len(message.get("lines", ()))
        self.added.set()

    def after(self, seq: int) -> list[dict[str, Any]]:
        return [message for number, message in self.messages.items() if number > seq]

    def acknowledge(self, seq: int) -> list[dict[str, Any]]:
        """Forget the messages up to `seq`, which the orchestrator has; they are returned."""
        done = [message for number, message in self.messages.items() if number <= seq]
        for message in done:
            del self.messages[message["seq"]]
            self.lines -= len(message.get("lines", ()))
        return done


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
        # Tells the orchestrator when this is a new agent process, whose numbering starts again.
        self.instance = uuid.uuid4().hex
        self.outbox = Outbox()
        self.read_to: dict[int, Positions] = {}  # seq of an output message -> read positions after its lines
        self.unsent_results: dict[str, dict[str, Any]] = {}
        self.commands: set[asyncio.Task[None]] = set()  # held here: the loop keeps only weak references
        self.exits_queued: set[str] = set()
        self.collectable: list[str] = []
        self.socket: Any = None
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.offline_after_seconds = OFFLINE_AFTER_SECONDS
        self.backoff = MIN_BACKOFF

    async def run_forever(self) -> None:
        become_subreaper()
        loop = asyncio.get_running_loop()
        self.worker.displays.on_change = lambda: loop.call_soon_threadsafe(self._sessions_changed)
        await asyncio.to_thread(self.worker.start)
        watcher = asyncio.create_task(self._watch())
        try:
            while True:
                try:
                    async with websockets.connect(
                        self.url,
                        additional_headers={"Authorization": f"Bearer {self.token}"},
                        ping_interval=None,  # the heartbeat pings, at the orchestrator's pace
                        max_size=MAX_MESSAGE_BYTES,
                    ) as socket:
                        await self._session(socket)
                    reason = "the orchestrator closed the connection"
                except (OSError, websockets.WebSocketException, TimeoutError, ValueError) as exc:
                    code = getattr(getattr(exc, "rcvd", None), "code", None)
                    if code in (4401, 4403):
                        log.error("the orchestrator refused this agent's token: %s", exc)
                    reason = str(exc) or type(exc).__name__
                delay = self.backoff * (0.5 + random.random())
                log.warning("disconnected (%s); reconnecting in %.1f s", reason, delay)
                await asyncio.sleep(delay)
                self.backoff = min(self.backoff * 2, MAX_BACKOFF)
        finally:
            watcher.cancel()
            # Not in a thread: the loop may be closing. The displays, like the robots, stay for the next agent.
            self.worker.close()

    async def _session(self, socket: Any) -> None:
        info = await asyncio.to_thread(self.worker.hello)
        results, self.unsent_results = self.unsent_results, {}
        hello = {
            "type": "hello",
            "name": self.name,
            "instance": self.instance,
            **info,
            "results": [{"id": command_id, "outcome": outcome} for command_id, outcome in results.items()],
        }
        try:
            await socket.send(json.dumps(hello))
            welcome = json.loads(await asyncio.wait_for(socket.recv(), WELCOME_SECONDS))
        except BaseException:
            self.unsent_results = {**results, **self.unsent_results}  # maybe not delivered: with the next hello
            raise
        if welcome.get("type") != "welcome":
            raise ValueError(f"expected a welcome, got {str(welcome)[:200]}")
        self.heartbeat_seconds = float(welcome.get("heartbeat_seconds", HEARTBEAT_SECONDS))
        self.offline_after_seconds = float(welcome.get("offline_after_seconds", OFFLINE_AFTER_SECONDS))
        acknowledged = int(welcome.get("acked", 0))
        self._acknowledged(acknowledged)
        self.socket, self.backoff = socket, MIN_BACKOFF
        log.info(
            "connected to %s as %s (%d results from while away, %d messages to send again)",
            self.url,
            self.name,
            len(results),
            len(self.outbox.after(acknowledged)),
        )
        tasks = {
            asyncio.create_task(self._send_outbox(socket, acknowledged), name="the outbox sender"),
            asyncio.create_task(self._heartbeat(socket), name="the heartbeat"),
        }
        for task in tasks:
            task.add_done_callback(lambda done: self._session_task_ended(socket, done))
        try:
            for command_id in list(self.unsent_results):  # those that ended while the hello was on its way
                await self._answer(command_id, self.unsent_results.pop(command_id))
            async for raw in socket:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "command":
                    self._start(message)
                elif kind == "ack":
                    self._acknowledged(int(message["seq"]))
        finally:
            self.socket = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _sessions_changed(self) -> None:
        """Nudge the orchestrator to sync this agent's sessions now. Not in the outbox: a nudge lost with a
        connection costs nothing (the next periodic sync carries the change), and it carries no data to trust."""
        socket = self.socket
        if socket is None:
            return
        task = asyncio.create_task(self._nudge(socket))
        self.commands.add(task)
        task.add_done_callback(self.commands.discard)

    @staticmethod
    async def _nudge(socket: Any) -> None:
        with contextlib.suppress(websockets.WebSocketException, OSError):
            await socket.send(json.dumps({"type": "sessions_changed"}))

    def _session_task_ended(self, socket: Any, task: asyncio.Task[None]) -> None:
        """The sender and the heartbeat live as long as the connection: one that ends, ends it."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, websockets.ConnectionClosed):
            log.error("the connection ends: %s failed", task.get_name(), exc_info=error)
        socket.transport.abort()

    def _start(self, message: dict[str, Any]) -> None:
        command_id = str(message.get("id") or "")
        if not command_id:
            log.warning("ignored a command without an id: %s", str(message)[:200])
            return
        if self.worker.running(command_id):
            return  # sent again after a reconnect while it still runs: its one result goes out when it ends
        # A repeat that slips in before the first reaches the worker waits there for the first's result: it is
        # answered twice, and the orchestrator takes the first answer.
        task = asyncio.create_task(self._execute(command_id, str(message.get("name")), message.get("args") or {}))
        self.commands.add(task)
        task.add_done_callback(self.commands.discard)

    async def _execute(self, command_id: str, name: str, args: dict[str, Any]) -> None:
        outcome = await asyncio.to_thread(self.worker.execute, command_id, name, args)
        await self._answer(command_id, outcome)

    async def _answer(self, command_id: str, outcome: dict[str, Any]) -> None:
        """Send a result on the connection open now, or keep it for the next hello. A result lost in a dying
        connection is no loss: the orchestrator sends its command again, and the worker answers from memory."""
        socket = self.socket
        if socket is None:
            self.unsent_results[command_id] = outcome
            return
        try:
            await socket.send(json.dumps({"type": "result", "id": command_id, "outcome": outcome}))
        except websockets.WebSocketException:
            self.unsent_results[command_id] = outcome

    def _acknowledged(self, seq: int) -> None:
        """The orchestrator holds everything up to `seq`: that output is never read again, those runs are done."""
        delivered: Positions = {}
        for message in self.outbox.acknowledge(seq):
            if message["type"] == "exited":
                self.collectable.append(message["run_id"])
            delivered.update(self.read_to.pop(message["seq"], {}))  # in order: each message's are further on
        if delivered:
            self.worker.commit_output(delivered)

    async def _send_outbox(self, socket: Any, acknowledged: int) -> None:
        """Every message the orchestrator lacks, in order: the unacknowledged ones first, then each new one."""
        sent = acknowledged
        while True:
            waiting = self.outbox.after(sent)
            if not waiting:
                self.outbox.added.clear()
                await self.outbox.added.wait()
                continue
            for message in waiting:
                await socket.send(json.dumps(message))
                sent = message["seq"]

    async def _watch(self) -> None:
        """For the agent's whole life: runs that ended and new output go to the outbox while connected (away, the
        spool files keep them); runs whose exit was acknowledged are forgotten; ended runs' leftovers are ended."""
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                while self.collectable:
                    run_id = self.collectable.pop()
                    await asyncio.to_thread(self.worker.collect, run_id)
                    self.exits_queued.discard(run_id)
                # Away, too: what ended runs left behind goes now, not once the orchestrator is back.
                await asyncio.to_thread(self.worker.look_after_runs)
                if self.socket is not None and not self.outbox.full:
                    await self._queue_runs()
                await asyncio.to_thread(self.worker.processes.reap_orphans)
            except Exception:
                log.exception("watching the runs failed; it goes on")

    async def _queue_runs(self) -> None:
        output = await asyncio.to_thread(self.worker.new_output)
        for part in output.split(LINES_PER_MESSAGE):
            self.outbox.add({"type": "output", "lines": part.lines})
            self.read_to[self.outbox.last_seq] = part.positions
        # Only runs whose output was read to its end: an exit is numbered after the run's last lines.
        for exited in await asyncio.to_thread(self.worker.finished_runs):
            run_id = exited.pop("run_id")
            if run_id not in self.exits_queued:
                self.exits_queued.add(run_id)
                self.outbox.add({"type": "exited", "run_id": run_id, "outcome": exited})

    async def _heartbeat(self, socket: Any) -> None:
        """Stats each heartbeat, and a ping whose pong must be back within a few of them, else the link is dead."""
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            stats = {
                "cpu_percent": psutil.cpu_percent(interval=None),
                "memory_percent": psutil.virtual_memory().percent,
                "runs": len(self.worker.processes.runs),
            }
            try:
                async with asyncio.timeout(self.offline_after_seconds):
                    await socket.send(json.dumps({"type": "heartbeat", "stats": stats}))
                    await (await socket.ping())
            except TimeoutError:
                # Returning ends the connection at once: a close handshake would wait on the dead link too.
                log.warning(
                    "the orchestrator has not answered for %.1f s; connecting again", self.offline_after_seconds
                )
                return
            await asyncio.sleep(max(0.0, self.heartbeat_seconds - (loop.time() - began)))
