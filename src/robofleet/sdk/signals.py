"""How the agent's signals reach a Python robot: SIGTERM (or SIGINT) asks it to stop; SIGUSR1 tells it to look at
its control directory, where a pause was asked or withdrawn.

The handlers only set a flag and write a byte to a pipe; a relay thread turns the byte into a notification for
whoever sleeps. A handler that notified a Condition itself could deadlock on the lock held by the very code it
interrupted in the main thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

_stop_asked = False
_look_asked = False
_installed = False
_wakeup_fd = -1
_changed = threading.Condition()


def install() -> bool:
    """Handle SIGTERM, SIGINT and SIGUSR1; True once they are handled. Python lets only the main thread set
    signal handlers: called first from another thread, this does nothing and returns False."""
    global _installed
    if _installed:
        return True
    if threading.current_thread() is not threading.main_thread():
        return False
    _start_relay()
    os.register_at_fork(after_in_child=_start_relay)  # a forked child has the handlers but not the thread
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _on_stop)
    signal.signal(signal.SIGUSR1, _on_look)
    _installed = True
    return True


def stop_asked() -> bool:
    return _stop_asked


def look_asked() -> bool:
    return _look_asked


def take_look() -> bool:
    """True once after each SIGUSR1. Cleared before the caller reads the control directory, so a signal that
    comes while it reads is seen by its next look."""
    global _look_asked
    if not _look_asked:
        return False
    _look_asked = False
    return True


def sleep(seconds: float, until: Callable[[], bool]) -> bool:
    """Sleep up to `seconds`, waking when a signal makes `until()` true; returns `until()`."""
    with _changed:
        return _changed.wait_for(until, max(seconds, 0.0))


def _on_stop(_signum: int, _frame: FrameType | None) -> None:
    global _stop_asked
    _stop_asked = True
    _wake()


def _on_look(_signum: int, _frame: FrameType | None) -> None:
    global _look_asked
    _look_asked = True
    _wake()


def _wake() -> None:
    with contextlib.suppress(OSError):  # a full pipe already holds a wake-up
        os.write(_wakeup_fd, b"\0")


def _start_relay() -> None:
    global _wakeup_fd, _changed
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    _wakeup_fd = write_fd
    _changed = threading.Condition()  # a fresh one: after a fork the old one may be held by a thread now gone
    threading.Thread(target=_relay, args=(read_fd,), name="robofleet-signals", daemon=True).start()


def _relay(read_fd: int) -> None:
    while os.read(read_fd, 512):
        with _changed:
            _changed.notify_all()
