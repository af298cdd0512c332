"""Robot processes on an agent's machine: start them through the run shim in a session of their own, pause them
(at a checkpoint when the robot has them, else by freezing the whole tree), resume, stop and kill whole process
trees, find them again after the agent restarts, and learn how they ended.

Facts this relies on (shared/NOTES.md): the session leader's pid is the process group id; a grandchild that
calls setsid() escapes killpg, so the tree is snapshotted with psutil and every pid is signalled too; SIGTERM to
a stopped process waits for SIGCONT; a killed process stays a zombie until its parent reaps it.

When a run ends, the processes it left behind (re-parented to the agent, or escaped into a session of their own)
are ended too, unless the robot keeps them (`keep_leftovers`); agents/leftovers.py says how they are found.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from robofleet.agents import leftovers, owned
from robofleet.agents.leftovers import LEFTOVER_GRACE_SECONDS, Sighting
from robofleet.sdk import control
from robofleet.settings.masking import looks_secret

PR_SET_CHILD_SUBREAPER = 36
SETTINGS_PREFIX = "ROBOFLEET_"
# How often the trees of living runs are noted (a walk of every process): a leftover that dropped its run's mark
# is known if it was in the tree at one of these moments.
SIGHTING_SECONDS = 2.0


def is_run_id(value: str) -> bool:
    """A run id as the orchestrator makes them (a number): it names a directory under the agent's state."""
    return 0 < len(value) <= 19 and value.isascii() and value.isdigit()


def robot_environment(inherited: Mapping[str, str], given: Mapping[str, str]) -> dict[str, str]:
    """What a robot starts with: this process's environment less its own settings (they hold the orchestrator's
    and the agent's secrets: client token, store URL with its password...) and less every variable whose name looks
    secret (PGPASSWORD, AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN...: set for serve or the agent, not for every robot),
    then `given` (the robot definition's env and the run context), which may set any of them again on purpose."""
    # pydantic-settings reads its variables whatever their case, so a lower-case one is a setting too.
    kept = {
        name: value
        for name, value in inherited.items()
        if not name.upper().startswith(SETTINGS_PREFIX) and not looks_secret(name, value)
    }
    return {**kept, **given}


def become_subreaper() -> bool:
    """Orphaned descendants of our robots are re-parented to us (not to PID 1), so we can reap them."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


@dataclass
class ManagedRun:
    run_id: str
    pid: int  # the shim: session leader, so also the process group id
    create_time: float
    run_dir: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    paused: bool = False  # frozen (SIGSTOP); a pause at a checkpoint lives in the control directory's files
    label: str = ""  # what the run is of (a robot's name), for the records its output becomes
    # The robot's processes may outlive it on purpose (what they write after the run ended is not read).
    keep_leftovers: bool = False
    leftovers: int = 0  # processes of the run, beyond its shim and robot, that the agent ended
    swept: bool = False  # its leftovers were dealt with once it ended
    seen: set[Sighting] = field(default_factory=set, repr=False)  # in its tree while it lived; memory only

    def state(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pid": self.pid,
            "create_time": self.create_time,
            "paused": self.paused,
            "label": self.label,
            "keep_leftovers": self.keep_leftovers,
            "leftovers": self.leftovers,
            "swept": self.swept,
        }

    @property
    def control_dir(self) -> Path:
        return self.run_dir / "control"

    @property
    def mark(self) -> str:
        """In the environment of each of the run's processes (agents/leftovers.py): its control directory."""
        return str(self.control_dir)


class ProcessManager:
    def __init__(self, state_dir: Path) -> None:
        self.runs_dir = state_dir.resolve() / "runs"  # absolute: the shim starts in the robot's directory
        # The agent's user's alone: robots' output (and what they print of their secrets) is in there.
        self.runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in (self.runs_dir.parent, self.runs_dir):
            folder.chmod(0o700)
        self.runs: dict[str, ManagedRun] = {}
        # Held while a run's processes are noted, killed or swept: commands and the watch loop come on several
        # threads, and a process ended by both must be counted once.
        self._ending = threading.RLock()
        self._noted_at = -SIGHTING_SECONDS

    # ---- starting and finding again -------------------------------------------------------------------

    def start(
        self,
        run_id: str,
        argv: list[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        label: str = "",
        keep_leftovers: bool = False,
    ) -> ManagedRun:
        """Start `argv` through the shim; raises OSError when the working directory or program is unusable. With
        `keep_leftovers` the processes the robot leaves behind are not ended when the run ends."""
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):  # it names a directory under runs/
            raise ValueError(f"a run id is a number or a plain name, not {run_id[:40]!r}")
        if run_id in self.runs:
            raise ValueError(f"run {run_id} is already managed here")
        if not argv:
            raise ValueError("argv is empty")
        run_dir = self.runs_dir / run_id
        run_dir.mkdir(mode=0o700, exist_ok=True)
        for spool in ("stdout.log", "stderr.log", "shim.log"):
            (run_dir / spool).touch(mode=0o600)  # there from the start, for whoever tails them
        (run_dir / "control").mkdir(mode=0o700, exist_ok=True)
        shim_log = (run_dir / "shim.log").open("ab")
        given = {**(env or {}), control.CONTROL_DIR_ENV: str(run_dir / "control")}
        popen = owned.popen(
            [sys.executable, "-m", "robofleet.agents.shim", str(run_dir), "--", *argv],
            cwd=cwd,
            env=robot_environment(os.environ, given),
            stdin=subprocess.DEVNULL,
            stdout=shim_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        shim_log.close()
        run = ManagedRun(
            run_id,
            popen.pid,
            psutil.Process(popen.pid).create_time(),
            run_dir,
            popen,
            label=label,
            keep_leftovers=keep_leftovers,
        )
        self._save(run)
        self.runs[run_id] = run
        return run

    def adopt(self) -> list[ManagedRun]:
        """Runs started before this agent (re)started whose shim still lives: managed again, by pid and start
        time (a recycled pid is not mistaken for ours)."""
        adopted = []
        for state_file in sorted(self.runs_dir.glob("*/state.json")):
            state = json.loads(state_file.read_text())
            if state["run_id"] in self.runs or (state_file.parent / "collected").exists():
                continue
            run = ManagedRun(
                state["run_id"],
                state["pid"],
                state["create_time"],
                state_file.parent,
                paused=state.get("paused", False),
                label=state.get("label", ""),
                keep_leftovers=state.get("keep_leftovers", False),
                leftovers=state.get("leftovers", 0),
                swept=state.get("swept", False),
            )
            self.runs[run.run_id] = run
            adopted.append(run)
        return adopted

    def _save(self, run: ManagedRun) -> None:
        temporary = run.run_dir / "state.json.tmp"
        temporary.write_text(json.dumps(run.state()))
        os.replace(temporary, run.run_dir / "state.json")

    # ---- watching ---------------------------------------------------------------------------------------

    def alive(self, run: ManagedRun) -> bool:
        if run.popen is not None:
            return run.popen.poll() is None
        try:
            process = psutil.Process(run.pid)
            return process.create_time() == run.create_time and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def outcome(self, run: ManagedRun) -> dict[str, Any] | None:
        """None while the run lives; then {"exit_code", "signal"} as the shim recorded it (with "spawn_error" or
        "last_error" when it knows why the robot failed), or with "exit_code": None when the shim itself was killed
        before it could write it."""
        if self.alive(run):
            return None
        path = run.run_dir / "outcome.json"
        if path.exists():
            return dict(json.loads(path.read_text()))
        code = run.popen.returncode if run.popen is not None else None
        return {"exit_code": None, "signal": -code if code is not None and code < 0 else None}

    def collect(self, run: ManagedRun) -> None:
        """Forget a finished run (its files stay for the output, marked collected)."""
        (run.run_dir / "collected").touch()
        self.runs.pop(run.run_id, None)

    def tree(self, run: ManagedRun) -> list[psutil.Process]:
        """The shim and every descendant, including those that left the process group with setsid()."""
        try:
            leader = psutil.Process(run.pid)
            if leader.create_time() != run.create_time:
                return []
            return [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def robot_pid(self, run: ManagedRun) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((run.run_dir / "robot.pid").read_text())
        return None

    # ---- signals ----------------------------------------------------------------------------------------

    def _signal_tree(self, run: ManagedRun, signum: int, processes: list[psutil.Process] | None = None) -> None:
        processes = self.tree(run) if processes is None else processes
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(run.pid, signum)
        for process in processes:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signum)

    def pause(self, run: ManagedRun, settle_within: float = 1.0) -> None:
        """Freeze the whole tree; returns once every process is stopped (SIGSTOP lands when the kernel next
        schedules each one), or after `settle_within` seconds."""
        processes = self.tree(run)
        self._signal_tree(run, signal.SIGSTOP, processes)
        run.paused = True
        self._save(run)
        wait_until(lambda: all(_stopped(process) for process in processes), settle_within, interval=0.005)

    def resume(self, run: ManagedRun) -> None:
        """Thaw the tree and withdraw a pause asked at a checkpoint, whichever it was."""
        self._signal_tree(run, signal.SIGCONT)
        run.paused = False
        self._save(run)
        self.withdraw_pause(run)

    # ---- pausing at a checkpoint (robofleet.sdk) -----------------------------------------------------------

    def checkpoint_pid(self, run: ManagedRun) -> int | None:
        """The process of this run that said it pauses at checkpoints, while it lives in the run's tree (a pid
        reused by a stranger is never signalled)."""
        declared = control.read(run.control_dir, control.DECLARED)
        if not declared or not declared.isdigit():
            return None
        pid = int(declared)
        return pid if any(process.pid == pid for process in self.tree(run)[1:]) else None

    def ask_pause(self, run: ManagedRun) -> bool:
        """Ask the robot to pause at its next checkpoint; False when it has none (freeze it instead)."""
        pid = self.checkpoint_pid(run)
        if pid is None:
            return False
        if control.read(run.control_dir, control.REQUEST) is None:
            control.write(run.control_dir, control.REQUEST, uuid.uuid4().hex)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)  # wakes it from sdk.wait(); a step it is in ends first
        return True

    def withdraw_pause(self, run: ManagedRun, *, wake: bool = True) -> None:
        if control.read(run.control_dir, control.REQUEST) is None:
            return
        control.remove(run.control_dir, control.REQUEST)
        pid = self.checkpoint_pid(run) if wake else None
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def freeze_unless_at_checkpoint(self, run: ManagedRun) -> None:
        """The end of a robot's time to reach a checkpoint: unless it got there, its tree is frozen."""
        if self.pause_state(run) == "cooperative":
            return
        self.withdraw_pause(run, wake=False)  # once thawed it goes on with its step, not into a checkpoint
        self.pause(run)

    def pause_state(self, run: ManagedRun) -> str | None:
        """None (not paused), "asked" (to pause at a checkpoint, not there yet), "cooperative" (it holds at a
        checkpoint, alive) or "frozen" (SIGSTOP)."""
        if run.paused:
            return "frozen"
        request = control.read(run.control_dir, control.REQUEST)
        if request is None:
            return None
        return "cooperative" if control.read(run.control_dir, control.ACKNOWLEDGED) == request else "asked"

    def terminate(self, run: ManagedRun) -> None:
        """The cooperative part of a safe stop: SIGTERM to the leader, which passes it to the robot; the robot
        stops its own children. A frozen tree gets SIGCONT after it, or the SIGTERM would wait forever. A pause
        asked at a checkpoint stays asked: the robot must leave it because it is told to stop, never start a
        step because it thinks it was resumed."""
        self._note(run, self.tree(run))  # as it is before the robot ends and its children are re-parented
        with contextlib.suppress(ProcessLookupError):
            os.kill(run.pid, signal.SIGTERM)
        if run.paused:
            self.resume(run)

    def kill(self, run: ManagedRun, timeout: float = 5.0) -> None:
        """Kill every process of the tree, grandchildren included, and, unless the run keeps its leftovers, those
        that already left the tree (re-parented after their parent died); reap what is ours to reap. The ones
        beyond the shim and the robot count as the run's leftovers."""
        with self._ending:
            tree = self.tree(run)
            self._note(run, tree)
            escaped = [] if run.keep_leftovers else leftovers.find(run.mark, run.create_time, run.seen)
            processes = [process for process in leftovers.unique([*tree, *escaped]) if _living(process)]
            self._signal_tree(run, signal.SIGKILL, processes)
            self._signal_tree(run, signal.SIGCONT, processes)  # a stopped process dies only once continued
            if run.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    run.popen.wait(timeout)
            psutil.wait_procs([p for p in processes if p.pid != run.pid], timeout=timeout)
            run.leftovers += self._beyond_shim_and_robot(run, processes)
            run.paused = False
            self._save(run)

    # ---- leftovers ------------------------------------------------------------------------------------------

    def note_trees(self) -> None:
        """Note the processes in each living run's tree, at most every SIGHTING_SECONDS: one that later drops
        the run's mark from its environment is still known as the run's when the run ends."""
        now = time.monotonic()
        if now - self._noted_at < SIGHTING_SECONDS:
            return
        self._noted_at = now
        for run in list(self.runs.values()):
            if not run.swept:
                self._note(run, self.tree(run))

    def end_leftovers(self, runs: Iterable[ManagedRun], grace: float = LEFTOVER_GRACE_SECONDS) -> list[ManagedRun]:
        """End what the given ended runs left behind (those not dealt with yet, and not keeping their leftovers),
        all together: SIGTERM, then SIGKILL after `grace` seconds, so this blocks for at most about `grace`. Each
        run's count of leftovers grows by those ended, and the run is saved as dealt with (an agent restarting
        does not look again). Returns the runs some of whose processes were ended: they may have written output
        until then."""
        with self._ending:
            pending = [run for run in runs if not run.swept]
            found = {
                run.run_id: [] if run.keep_leftovers else leftovers.find(run.mark, run.create_time, run.seen)
                for run in pending
            }
            ended = leftovers.end(leftovers.unique(process for each in found.values() for process in each), grace)
            ended_pids = {process.pid for process in ended}
            for run in pending:
                run.leftovers += self._beyond_shim_and_robot(
                    run, [process for process in found[run.run_id] if process.pid in ended_pids]
                )
                run.swept = True
                run.seen.clear()
                self._save(run)
        return [run for run in pending if found[run.run_id]]

    def _note(self, run: ManagedRun, processes: list[psutil.Process]) -> None:
        with self._ending:
            existing = set(psutil.pids())
            run.seen = {seen for seen in run.seen if seen[0] in existing}  # forget the gone: a robot may churn
            run.seen.update(identity for identity in map(leftovers.sighting, processes) if identity is not None)

    def _beyond_shim_and_robot(self, run: ManagedRun, processes: list[psutil.Process]) -> int:
        robot = self.robot_pid(run)
        return sum(1 for process in processes if process.pid not in (run.pid, robot))

    def reap_orphans(self) -> int:
        """Reap zombies re-parented to this (subreaper) process that are not shims we wait for ourselves, nor
        children another part of the agent reads the exit of (owned.py)."""
        ours = {run.pid for run in self.runs.values() if run.popen is not None}
        reaped = 0
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error):
                if child.pid not in ours and child.status() == psutil.STATUS_ZOMBIE and owned.reap(child.pid):
                    reaped += 1
        return reaped


def _living(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _stopped(process: psutil.Process) -> bool:
    try:
        return process.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_until(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
