"""A TCP proxy a test controls, put between a remote agent and `robofleet serve` to fail like a network does:
cut every connection at once (a reset each way), refuse new ones for a while, or go silent (a pulled cable:
bytes stop, nobody is told), or only toward the agent. Both processes stay alive whatever the proxy does."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from concurrent.futures import Future
from typing import Any

CHUNK = 64 * 1024


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than a polite FIN: what a peer sees when a router drops the connection."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FlakyProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="flaky-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._refusing = False
        self._flowing: asyncio.Event | None = None
        self._toward_agent: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    def start(self) -> FlakyProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """Reset every connection passing through now, both ways."""
        self._call(self._cut())

    def refuse(self) -> None:
        """Reset new connections as soon as they arrive, until `allow`."""
        self._refusing = True

    def allow(self) -> None:
        self._refusing = False

    def silence(self) -> None:
        """Stop moving bytes on every connection, old and new, without closing any, until `restore`."""
        self._loop.call_soon_threadsafe(self._require_flowing().clear)

    def silence_toward_agent(self) -> None:
        """Stop the bytes from serve to the agent (acknowledgements, commands, pongs); the agent's still arrive."""
        assert self._toward_agent is not None, "start the proxy first"
        self._loop.call_soon_threadsafe(self._toward_agent.clear)

    def restore(self) -> None:
        assert self._toward_agent is not None, "start the proxy first"
        self._loop.call_soon_threadsafe(self._require_flowing().set)
        self._loop.call_soon_threadsafe(self._toward_agent.set)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _call(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(10)

    def _require_flowing(self) -> asyncio.Event:
        assert self._flowing is not None, "start the proxy first"
        return self._flowing

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._toward_agent = asyncio.Event()
        self._toward_agent.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, agent_reader: asyncio.StreamReader, agent_writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            reset(agent_writer)
            return
        try:
            serve_reader, serve_writer = await asyncio.open_connection(*self.target)
        except OSError:
            reset(agent_writer)
            return
        self.accepted += 1
        pair = (agent_writer, serve_writer)
        self._pairs.add(pair)
        pumps = {
            asyncio.create_task(self._pump(agent_reader, serve_writer)),
            asyncio.create_task(self._pump(serve_reader, agent_writer, toward_agent=True)),
        }
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
            if any(task.exception() is not None for task in done):
                for writer in pair:  # one side was reset: so is the other
                    reset(writer)
        finally:
            self._pairs.discard(pair)
            for task in pumps:
                task.cancel()
            for writer in pair:
                writer.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, toward_agent: bool = False
    ) -> None:
        """Bytes one way until the sender ends, then the end passed on (a half close, as TCP has it)."""
        flowing = self._require_flowing()
        assert self._toward_agent is not None
        events = (flowing, self._toward_agent) if toward_agent else (flowing,)
        while True:
            # Not reading while silent either: past the stream's buffer, the sender's window fills and it stalls,
            # as over a dead link.
            for event in events:
                await event.wait()
            data = await reader.read(CHUNK)
            if not data:
                break
            for event in events:
                await event.wait()
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def _cut(self) -> None:
        for pair in list(self._pairs):
            for writer in pair:
                reset(writer)
        self._pairs.clear()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
