"""Built-in test and demo actions."""

from __future__ import annotations

import asyncio

from pydantic import Field

from robofleet.activities.registry import ActionContext, Params, Registry


class EchoParams(Params):
    message: str = Field(max_length=100_000, description="Returned unchanged")


class SleepParams(Params):
    seconds: float = Field(ge=0, le=3600, description="How long to sleep")


def register(registry: Registry) -> None:
    @registry.register("system.echo", permission="activities:run", params=EchoParams)
    async def echo(ctx: ActionContext, params: EchoParams) -> dict[str, str]:
        """Return the message unchanged (for tests, demos and measuring the processor)."""
        return {"message": params.message}

    @registry.register("system.sleep", permission="activities:run", params=SleepParams)
    async def sleep(ctx: ActionContext, params: SleepParams) -> dict[str, float]:
        """Sleep for some seconds without blocking anything else."""
        await asyncio.sleep(params.seconds)
        return {"slept": params.seconds}
