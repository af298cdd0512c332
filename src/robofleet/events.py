"""In-process publish/subscribe between services and live streams; slow readers lose old events, never slow the
publisher. Core: it knows nothing of HTTP (the SSE text is `web/sse.py`)."""

from __future__ import annotations

import asyncio
from contextlib import contextmanager
from typing import Any

SUBSCRIBER_BUFFER = 1000
CLOSING: tuple[str, dict[str, Any]] = ("", {})  # what a subscriber gets when the server stops: its stream ends
# What a subscriber that reads the store again when it falls behind gets instead of the events it missed.
LAGGED: tuple[str, dict[str, Any]] = ("", {"lagged": True})


class EventHub:
    def __init__(self) -> None:
        self._subscribers: dict[asyncio.Queue[tuple[str, dict[str, Any]]], str] = {}
        self._catching_up: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def close_soon(self) -> None:
        """End every stream, from a signal handler or another thread: the server waits for open responses
        before it stops, and live streams never end by themselves."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.close)

    def close(self) -> None:
        """Call from the event loop thread."""
        self.closed = True
        for subscriber in self._subscribers:
            if subscriber.full():
                subscriber.get_nowait()
            subscriber.put_nowait(CLOSING)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Call from the event loop thread."""
        for subscriber, wanted in self._subscribers.items():
            if wanted != topic:
                continue
            if subscriber.full():
                if subscriber in self._catching_up:
                    # It reads what it missed from the store: the events queued so far are dropped, and it is told.
                    while not subscriber.empty():
                        subscriber.get_nowait()
                    subscriber.put_nowait(LAGGED)
                else:
                    subscriber.get_nowait()  # drop the oldest: a stuck browser must not hold memory or the loop
            subscriber.put_nowait((topic, payload))

    @contextmanager
    def subscribe(self, topic: str, *, buffer: int = SUBSCRIBER_BUFFER, catches_up: bool = False) -> Any:
        """A queue of `topic`'s events. Past `buffer` events unread, the oldest is dropped; with `catches_up` (a
        reader that can read what it missed from the store) the queue is emptied and LAGGED put first."""
        subscriber: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(buffer)
        if catches_up:
            self._catching_up.add(subscriber)
        self._loop = asyncio.get_running_loop()
        if self.closed:
            subscriber.put_nowait(CLOSING)
        self._subscribers[subscriber] = topic
        try:
            yield subscriber
        finally:
            self._subscribers.pop(subscriber, None)
            self._catching_up.discard(subscriber)

    def has_subscribers(self, topic: str) -> bool:
        return topic in self._subscribers.values()
