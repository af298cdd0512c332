"""Server-sent events: the text of one event, a topic of the event hub as a stream of them, and a stream that ends
once its caller may no longer read it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from robofleet.auth.cache import epoch_of, epochs_of
from robofleet.errors import StoreUnavailable, Unauthenticated
from robofleet.events import CLOSING, EventHub
from robofleet.web.context import context_of
from robofleet.web.security import authenticate

HEARTBEAT_SECONDS = 15.0
# A stream checks its caller before each message: at once when the auth epoch moved (a token revoked, a user
# disabled or changed, a logout), else every RECHECK_SECONDS (expiries)...
RECHECK_SECONDS = 5.0
# ...and this often while no message comes.
IDLE_RECHECK_SECONDS = 2.0


def sse_message(event: str, data: dict[str, Any] | str, event_id: str | None = None) -> str:
    body = data if isinstance(data, str) else json.dumps(data, default=str, separators=(",", ":"))
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in body.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


async def sse_stream(
    hub: EventHub, topic: str, render: Callable[[dict[str, Any]], str | None], is_disconnected: Callable[[], Any]
) -> AsyncIterator[str]:
    """Every event of `topic` rendered to SSE text (None skips it), with heartbeats, until the client goes."""
    with hub.subscribe(topic) as subscriber:
        yield ": connected\n\n"
        while True:
            try:
                got = await asyncio.wait_for(subscriber.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                if await is_disconnected():
                    return
                yield ": heartbeat\n\n"
                continue
            if got is CLOSING:
                return
            got_topic, payload = got
            if got_topic != topic:
                continue
            text = render(payload)
            if text is not None:
                yield text


class CallerCheck:
    """Whether the token or session that opened a stream still stands for someone holding `permission`. Any change
    to users, roles, tokens or sessions moves the auth epoch: a check that sees it unmoved answers without I/O."""

    def __init__(self, request: Request, permission: str | None) -> None:
        self.request = request
        self.permission = permission
        self.epoch: int | None = None
        self.checked_at = 0.0

    async def __call__(self) -> bool:
        store = context_of(self.request).store
        epoch = epochs_of(store.engine).get()
        if epoch is not None and epoch == self.epoch and time.monotonic() - self.checked_at < RECHECK_SECONDS:
            return True
        return await run_in_threadpool(self.check)

    def check(self) -> bool:
        context = context_of(self.request)
        try:
            epoch = epoch_of(context.store)
            principal = authenticate(context, self.request)
        except Unauthenticated:
            return False
        except StoreUnavailable:
            return True  # who the caller is cannot have changed while nothing could be written
        self.epoch, self.checked_at = epoch, time.monotonic()
        return self.permission is None or principal.can(self.permission)


async def while_allowed(stream: AsyncIterator[str], allowed: Callable[[], Any]) -> AsyncIterator[str]:
    """`stream`, ended (with a last comment saying why) as soon as `allowed()` turns false; checked before each
    message and every IDLE_RECHECK_SECONDS while the stream waits."""
    pending: asyncio.Future[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(stream))
            await asyncio.wait({pending}, timeout=IDLE_RECHECK_SECONDS)
            if not await allowed():
                yield ": closed: the credentials of this stream were revoked, expired or lost the permission\n\n"
                return
            if not pending.done():
                continue
            try:
                text = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield text
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def sse_response(
    stream: AsyncIterator[str], request: Request | None = None, permission: str | None = None
) -> StreamingResponse:
    """A live stream as the browser's EventSource and `robofleet logs --follow` expect it: never cached, and not
    held back by a buffering reverse proxy (nginx reads X-Accel-Buffering). With `request`, it ends once the
    caller's token or session no longer holds `permission` (revoked, expired, disabled, logged out)."""
    if request is not None:
        stream = while_allowed(stream, CallerCheck(request, permission))
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
