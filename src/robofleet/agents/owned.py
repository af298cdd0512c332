"""Children of the agent process whose exit some part of the agent reads itself through their `Popen`: its X servers,
window managers and RDP clients (how one ended is the reason its session shows; an RDP client's exit code tells a
logoff from a drop), the remote shell's command (its exit code is the answer) and the short helpers it asks things
of (xdotool, xdpyinfo, xauth: their exit says whether it worked). The orphan reaper (processes.py) leaves them alone:
reaping one would take its exit status, and `Popen` would then say 0 for a command that failed or was killed.

Children are started here (`popen`, `run`) under the lock the reaper reaps under (`reap`), so there is no moment
when a child of ours exists and is not known to be ours. Held weakly: once its owner drops the `Popen`, nobody reads
that exit any more and the reaper may have the zombie."""

from __future__ import annotations

import os
import subprocess
import threading
import weakref
from collections.abc import Sequence
from typing import Any

_lock = threading.Lock()
_owned: weakref.WeakValueDictionary[int, subprocess.Popen[Any]] = weakref.WeakValueDictionary()


def popen(argv: Sequence[str] | str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(argv, **kwargs)`, owned from the moment it exists."""
    with _lock:
        process: subprocess.Popen[bytes] = subprocess.Popen(argv, **kwargs)
        _owned[process.pid] = process
    return process


def run(
    argv: Sequence[str], *, timeout: float, input: bytes | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    """`subprocess.run(argv, capture_output=True, check=False, timeout=timeout, input=input, **kwargs)` with the
    child owned; TimeoutExpired once it is killed and reaped."""
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    with popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def own(process: subprocess.Popen[Any]) -> subprocess.Popen[Any]:
    """Keep the reaper off a child started elsewhere while its owner holds it; `process` itself, for chaining."""
    with _lock:
        _owned[process.pid] = process
    return process


def reap(pid: int) -> bool:
    """Reap the zombie child `pid` unless an owner still means to read its exit itself; whether it was reaped."""
    with _lock:
        process = _owned.get(pid)
        if process is not None and process.returncode is None:
            return False
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:
            return False
