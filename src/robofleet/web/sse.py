"""Server-sent events: the text of one event, and a topic of the event hub as a stream of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from robofleet.events import CLOSING, EventHub

HEARTBEAT_SECONDS = 15.0


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


def sse_response(stream: AsyncIterator[str]) -> StreamingResponse:
    """A live stream as the browser's EventSource and `robofleet logs --follow` expect it: never cached, and not
    held back by a buffering reverse proxy (nginx reads X-Accel-Buffering)."""
    return StreamingResponse(
        stream, media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
