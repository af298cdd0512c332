"""Waiting in tests for something a real process does in its own time: the one polling loop of the suite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

Message = str | Callable[[], object]


def _timed_out(timeout: float, message: Message) -> AssertionError:
    said = message() if callable(message) else message
    return AssertionError(f"timed out after {timeout} s waiting for {said}")


def wait_until(check: Callable[[], T], timeout: float = 15, interval: float = 0.05, message: Message = "it") -> T:
    """`check()`'s first truthy value, polled every `interval` seconds.

    Fails (AssertionError) after `timeout` seconds, saying what it waited for: `message`, or what `message()`
    returns then (the last value seen, a process's log). An exception raised by `check` fails at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, message)
        time.sleep(interval)


async def wait_until_async(
    check: Callable[[], T],
    timeout: float = 15,  # noqa: ASYNC109 - the signature of wait_until, on purpose
    interval: float = 0.05,
    message: Message = "it",
) -> T:
    """`wait_until` inside a test's event loop: sleeps without blocking the loop, whose tasks make `check` true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _timed_out(timeout, message)
        await asyncio.sleep(interval)
