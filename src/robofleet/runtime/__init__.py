"""The runtime every service shares: loops that act on stored deadlines, keyed timers, owned tasks."""

from robofleet.runtime.loops import Loop, Tasks, Timers

__all__ = ["Loop", "Tasks", "Timers"]
