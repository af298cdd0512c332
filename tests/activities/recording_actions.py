"""A deployment module of test actions (loaded through `activities.modules`), recording what ran and when."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from pydantic import Field

from robofleet.activities.registry import ActionContext, Params, Registry

executed: list[int] = []
concurrency = {"now": 0, "peak": 0}
_lock = threading.Lock()


class RecordParams(Params):
    seq: int
    seconds: float = Field(0.0, ge=0, le=10)


class AppendParams(Params):
    path: str
    line: str


def register(registry: Registry) -> None:
    @registry.register("test.record", permission="activities:run", params=RecordParams)
    def record(ctx: ActionContext, params: RecordParams) -> dict[str, int]:
        """Record the order of execution and how many ran at once (a blocking action: runs in a thread)."""
        with _lock:
            concurrency["now"] += 1
            concurrency["peak"] = max(concurrency["peak"], concurrency["now"])
            executed.append(params.seq)
        time.sleep(params.seconds)
        with _lock:
            concurrency["now"] -= 1
        return {"seq": params.seq}

    @registry.register("test.append", permission="activities:run", params=AppendParams)
    def append(ctx: ActionContext, params: AppendParams) -> dict[str, str]:
        """Append a line to a file: what ran, counted across `serve` processes."""
        with Path(params.path).open("a") as file:
            file.write(params.line + "\n")
        return {"line": params.line}

    @registry.register("test.fail", permission="activities:run")
    async def fail(ctx: ActionContext, params: Params) -> None:
        """Always fails."""
        await asyncio.sleep(0)
        raise RuntimeError("failing on purpose")


def reset() -> None:
    executed.clear()
    concurrency.update(now=0, peak=0)
