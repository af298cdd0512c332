"""The run context for robots written in Python: who they are, whether they should stop, where they may pause.

A safe stop sends the robot SIGTERM; `should_stop()` turns true instead of the process dying at once, so the
robot can finish its step and leave cleanly. The orchestrator kills it only after the robot's safe-stop timeout.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from robofleet.sdk import signals
from robofleet.sdk.checkpoints import declare, declared, honour_pause


@dataclass(frozen=True)
class RunContext:
    url: str | None
    run_id: str | None
    robot: str | None


def context() -> RunContext:
    """What the agent told this run about itself (ROBOFLEET_URL, ROBOFLEET_RUN_ID, ROBOFLEET_ROBOT)."""
    return RunContext(
        os.environ.get("ROBOFLEET_URL"), os.environ.get("ROBOFLEET_RUN_ID"), os.environ.get("ROBOFLEET_ROBOT")
    )


def install(*, checkpoints: bool = False) -> None:
    """Turn SIGTERM (and SIGINT) into a stop request. Called by `should_stop()`; call it early, in the main
    thread, to be safe. With `checkpoints=True` the robot also says now that it pauses at `checkpoint()`, so a
    pause asked before its first checkpoint waits for it rather than freezing the process."""
    signals.install()
    if checkpoints:
        declare()


def should_stop() -> bool:
    """True once a safe stop was asked for: finish the current step, then return from the robot."""
    signals.install()
    return signals.stop_asked()


def wait(seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once on a stop request; returns should_stop(). A robot with checkpoints
    is at a safe place while it waits: a pause asked meanwhile holds it here, and the sleep goes on after it."""
    signals.install()
    deadline = time.monotonic() + seconds
    while not signals.stop_asked():
        honour_pause()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        signals.sleep(remaining, until=_woken)
    return signals.stop_asked()


def _woken() -> bool:
    return signals.stop_asked() or (declared() and signals.look_asked())
