"""Children of the agent process whose exit some part of the agent reads itself through their `Popen` (its X
servers, window managers and RDP clients: how one ended is the reason its session shows, and an RDP client's exit
code tells a logoff from a drop). The orphan reaper (processes.py) leaves them alone: reaping one would take its
exit status, and `Popen.poll` would then say 0 for a client killed by a signal.

Held weakly: once its owner drops the `Popen`, nobody reads that exit any more and the reaper may have the zombie."""

from __future__ import annotations

import subprocess
import threading
import weakref
from typing import Any

_lock = threading.Lock()
_owned: weakref.WeakValueDictionary[int, subprocess.Popen[Any]] = weakref.WeakValueDictionary()


def own(popen: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Keep the reaper off `popen`'s process while its owner holds it; `popen` itself, for a call's chaining."""
    with _lock:
        _owned[popen.pid] = popen
    return popen


def waited_for(pid: int) -> bool:
    """Whether an owner still means to read the exit of `pid` itself (it holds its `Popen`, not yet reaped)."""
    with _lock:
        popen = _owned.get(pid)
    return popen is not None and popen.returncode is None
