"""A run's leftovers: the processes its robot started that outlive the run, found and ended when it ends.

How a process is known to be a run's, whatever became of its parent:

- The mark. The agent gives each run's shim ROBOFLEET_CONTROL_DIR, the run's own control directory (an absolute
  path under the agent's state directory, so no other run of this agent or of another agent has it), and the robot
  and everything it starts inherit it. /proc/PID/environ keeps the environment a process was started with, so the
  mark stays readable after a setsid() and after the process is re-parented (to the agent, a child subreaper, or
  to init), and after the agent itself restarted. Not ROBOFLEET_RUN_ID: run ids repeat across orchestrators on one
  machine. Only processes started at or after the run's shim count (a run's process is never older than its
  shim), so even a process of an earlier run with the same id under the same state directory (a store started
  afresh) is left alone, unless it started its children after this run began.
- The sightings. A process that replaced its environment (`env -i`) carries no mark, so the agent also notes, by
  pid and start time, the processes it sees in the run's tree while the run lives (kept in memory only; after an
  agent restart the mark alone finds them).

The search is cheap and happens only at a run's end or kill: it reads the environment only of processes started
since the run's shim and readable by the agent (same OS user, or any when the agent is root). The agent itself and
its ancestors (`serve`, whoever started it) are never candidates.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Collection, Iterable

import psutil

from robofleet.sdk import control

RUN_MARK_ENV = control.CONTROL_DIR_ENV
# How long leftovers get to leave after SIGTERM before SIGKILL: also the most an exit report waits for them.
LEFTOVER_GRACE_SECONDS = 3.0
# After SIGKILL a process is gone at once unless it sleeps in the kernel; it is not waited for longer than this.
KILL_WAIT_SECONDS = 0.5

Sighting = tuple[int, float]  # pid and start time: a recycled pid is a different process


def sighting(process: psutil.Process) -> Sighting | None:
    """The process's identity, or None when it is gone."""
    try:
        return process.pid, process.create_time()
    except psutil.Error:
        return None


def spare() -> set[int]:
    """The pids never ended as leftovers: this agent process and its ancestors."""
    me = psutil.Process()
    return {me.pid, *(parent.pid for parent in me.parents())}


def find(mark: str, since: float, seen: Collection[Sighting]) -> list[psutil.Process]:
    """The living processes (zombies are dead already) that carry `mark` in their environment or were seen in the
    run's tree, started at or after `since` (the shim's start time). Never raises for a process that vanishes or
    cannot be read meanwhile: it is left out."""
    spared = spare()
    found = []
    for process in psutil.process_iter(["create_time"]):
        started = process.info["create_time"]
        if process.pid in spared or started is None or started < since:
            continue
        try:
            if (process.pid, started) not in seen and not (mark and process.environ().get(RUN_MARK_ENV) == mark):
                continue
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.Error:
            continue
    return found


def end(processes: Iterable[psutil.Process], grace: float = LEFTOVER_GRACE_SECONDS) -> list[psutil.Process]:
    """SIGTERM (with SIGCONT, so a frozen one can act on it) to each, SIGKILL to those still there after `grace`
    seconds. Returns the processes that were alive when told to go; reaps those that are this process's children
    (leftovers re-parented to the agent as subreaper). Blocks for up to `grace` + KILL_WAIT_SECONDS."""
    told = [process for process in processes if _send(process, signal.SIGTERM)]
    for process in told:
        _send(process, signal.SIGCONT)
    _, stubborn = psutil.wait_procs(told, timeout=grace)
    kill(stubborn)
    return told


def kill(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """SIGKILL (then SIGCONT: a stopped process dies only once continued) to each; returns those that were alive.
    Waits up to KILL_WAIT_SECONDS for them, reaping those that are this process's children."""
    killed = [process for process in processes if _send(process, signal.SIGKILL)]
    for process in killed:
        _send(process, signal.SIGCONT)
    psutil.wait_procs(killed, timeout=KILL_WAIT_SECONDS)
    return killed


def _send(process: psutil.Process, signum: int) -> bool:
    """Whether the signal reached the process; psutil checks first that the pid is still the same process."""
    with contextlib.suppress(psutil.Error):
        process.send_signal(signum)
        return True
    return False


def unique(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Each process once, by pid, in order."""
    by_pid: dict[int, psutil.Process] = {}
    for process in processes:
        by_pid.setdefault(process.pid, process)
    return list(by_pid.values())
