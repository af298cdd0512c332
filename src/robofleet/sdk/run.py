"""The run context for robots written in Python: who they are, and whether they should stop.

A safe stop sends the robot SIGTERM; `should_stop()` turns true instead of the process dying at once, so the
robot can finish its step and leave cleanly. The orchestrator kills it only after the robot's safe-stop timeout.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

_stop = threading.Event()
_installed = False


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


def install() -> None:
    """Turn SIGTERM (and SIGINT) into a stop request. Called by `should_stop()`; call it early to be safe."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: _stop.set())
    _installed = True


def should_stop() -> bool:
    """True once a safe stop was asked for: finish the current step, then return from the robot."""
    install()
    return _stop.is_set()


def wait(seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once on a stop request; returns should_stop()."""
    install()
    return _stop.wait(seconds)
