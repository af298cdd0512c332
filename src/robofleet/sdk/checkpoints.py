"""Cooperative pause. A robot calls `checkpoint()` between steps; when a pause was asked, it holds there until
resumed, still alive (its threads, its browser, its heartbeats go on), instead of having its whole process tree
frozen mid-step. A robot that never said it has checkpoints is frozen, as any other program.

The first `checkpoint()` (or `install(checkpoints=True)`) tells the agent, through the run's control directory,
which process to wake with SIGUSR1; see `robofleet.sdk.control` for the handshake.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from robofleet.sdk import control, signals

log = logging.getLogger("robofleet.sdk")
RECHECK_SECONDS = 1.0  # while held, the request is read again this often even if no signal came

_directory: Path | None = None  # set once declared
_candidate: Path | None = None  # the run's control directory, until the signal handlers are in place
_declared = False
_declaring_over = False  # declared, or known impossible: outside a robofleet run


def declare() -> bool:
    """Tell the agent that this process pauses at checkpoints; True when it knows. False outside a robofleet
    run, or when called first from a thread other than the main one (signal handlers need the main thread)."""
    global _directory, _candidate, _declared, _declaring_over
    if _declaring_over:
        return _declared
    if _candidate is None:
        path = os.environ.get(control.CONTROL_DIR_ENV)
        if not path or not Path(path).is_dir():
            _declaring_over = True
            return False
        _candidate = Path(path)
    if not signals.install():
        return False  # tried again on the next call, maybe from the main thread
    control.write(_candidate, control.DECLARED, str(os.getpid()))
    _directory = _candidate
    _declared = _declaring_over = True
    return True


def checkpoint() -> bool:
    """A safe place to pause: returns at once unless a pause was asked, else when the run is resumed, or at once
    when a safe stop is asked meanwhile. Returns should_stop(). Cheap enough for a tight loop: unless the agent
    signalled, it reads no file and makes no system call."""
    if not _declaring_over:
        declare()
    honour_pause()
    return signals.stop_asked()


def honour_pause() -> None:
    """Hold here if a pause is asked (and this process said it has checkpoints); otherwise return at once."""
    if _directory is None or not signals.take_look():
        return
    request = control.read(_directory, control.REQUEST)
    if request is None or signals.stop_asked():
        return
    log.info("paused at a checkpoint")
    honoured = None
    try:
        while request is not None and not signals.stop_asked():
            if request != honoured:
                control.write(_directory, control.ACKNOWLEDGED, request)
                honoured = request
            signals.sleep(RECHECK_SECONDS, until=lambda: signals.stop_asked() or signals.look_asked())
            signals.take_look()
            request = control.read(_directory, control.REQUEST)
    finally:
        control.remove(_directory, control.ACKNOWLEDGED)
    log.info("left the checkpoint: %s", "stop requested" if signals.stop_asked() else "resumed")


def declared() -> bool:
    return _declared
