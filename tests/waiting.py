"""Waiting in tests for something a real process does in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def until(check: Callable[[], Any], seconds: float = 15, what: str = "the condition") -> Any:
    """`check()`'s first truthy value, polled every 50 ms; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        time.sleep(0.05)
