"""What a run leaves behind: a robot's process that escaped with setsid() goes when the run ends, however it ends,
unless the robot keeps its leftovers. Real processes and signals, driven through the agent's worker."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from robofleet.agents import leftovers
from robofleet.agents.processes import become_subreaper, wait_until
from robofleet.agents.worker import Worker

# A robot that starts a grandchild in a session of its own (as a browser might), says its pid, and lives on for
# argv[1] seconds. argv[2], when given, is a command to run before setsid (e.g. `env -i`).
ROBOT = """
import subprocess, sys, time
escaped = subprocess.Popen([*sys.argv[2:], "setsid", "sleep", "300"])
print(escaped.pid, flush=True)
time.sleep(float(sys.argv[1]))
"""
# A leftover that shrugs off SIGTERM.
STUBBORN = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
STUBBORN += "time.sleep(300)\n"


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Worker]:
    become_subreaper()  # as the agents are: orphans come to us, not to init
    made = Worker(tmp_path / "state")
    yield made
    for run in list(made.processes.runs.values()):
        made.processes.kill(run)
    made.processes.reap_orphans()


@pytest.fixture
def kept() -> Iterator[list[int]]:
    """Pids a test lets live on purpose; ended when it is over."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            process.kill()
            process.wait(5)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start(worker: Worker, run_id: str, lives: float, *, keep_leftovers: bool = False, before: str = "") -> int:
    """Start the robot as the orchestrator would; the pid of its escaped grandchild once it is there."""
    argv = [sys.executable, "-c", ROBOT, str(lives), *before.split()]
    started = worker.execute(
        f"start-{run_id}", "process.start", {"run_id": run_id, "argv": argv, "keep_leftovers": keep_leftovers}
    )
    assert started["ok"], started
    stdout = worker.processes.runs[run_id].run_dir / "stdout.log"
    assert wait_until(lambda: stdout.read_text().strip().isdigit(), 10), stdout.read_text()
    pid = int(stdout.read_text())
    assert alive(pid)
    return pid


def reported_end(worker: Worker, run_id: str, within: float = 15) -> dict[str, Any]:
    """The run's end as the agent's watch loop reports it (output read to the end first)."""
    ended: dict[str, dict[str, Any]] = {}

    def reported() -> bool:
        worker.new_output()
        ended.update({str(run["run_id"]): run for run in worker.finished_runs()})
        return run_id in ended

    assert wait_until(reported, within, interval=0.05), f"run {run_id} did not end"
    return ended[run_id]


def signal_run(worker: Worker, run_id: str, action: str) -> None:
    outcome = worker.execute(f"{action}-{run_id}", "process.signal", {"run_id": run_id, "action": action})
    assert outcome["ok"], outcome


def test_a_robot_that_ends_by_itself_leaves_nothing_behind(worker: Worker) -> None:
    escaped = start(worker, "1", lives=0)
    end = reported_end(worker, "1")
    assert end["exit_code"] == 0 and end["leftovers"] == 1
    assert not alive(escaped)


def test_a_safely_stopped_robot_leaves_nothing_behind(worker: Worker) -> None:
    escaped = start(worker, "2", lives=300)
    signal_run(worker, "2", "terminate")
    end = reported_end(worker, "2")
    assert end["signal"] == signal.SIGTERM and end["leftovers"] == 1
    assert not alive(escaped)


def test_a_killed_robot_leaves_nothing_behind(worker: Worker) -> None:
    escaped = start(worker, "3", lives=300)
    signal_run(worker, "3", "kill")
    assert not alive(escaped)
    end = reported_end(worker, "3")
    assert end["exit_code"] is None and end["leftovers"] == 1


@pytest.mark.parametrize("ending", ["by itself", "safe stop"])
def test_a_robot_that_keeps_its_leftovers_keeps_them(worker: Worker, kept: list[int], ending: str) -> None:
    escaped = start(worker, "4", lives=0 if ending == "by itself" else 300, keep_leftovers=True)
    kept.append(escaped)
    if ending == "safe stop":
        signal_run(worker, "4", "terminate")
    assert reported_end(worker, "4")["leftovers"] == 0
    assert alive(escaped)


def test_leftovers_go_while_the_agent_is_away_from_its_orchestrator(worker: Worker) -> None:
    escaped = start(worker, "11", lives=0)
    # Away, an agent's watch loop only looks after its runs: no output is read, no end reported.

    def looked_after() -> bool:
        worker.look_after_runs()
        return not alive(escaped)

    assert wait_until(looked_after, 10, interval=0.05)
    assert reported_end(worker, "11")["leftovers"] == 1


def test_another_runs_processes_are_left_alone(worker: Worker) -> None:
    others = start(worker, "5", lives=300)
    mine = start(worker, "6", lives=0)
    assert reported_end(worker, "6")["leftovers"] == 1
    assert not alive(mine) and alive(others)
    assert worker.processes.alive(worker.processes.runs["5"])


def test_a_leftover_that_dropped_its_environment_is_known_from_the_run_tree(worker: Worker) -> None:
    escaped = start(worker, "7", lives=2, before="env -i")
    assert wait_until(lambda: psutil.Process(escaped).environ() == {}, 5)  # no mark to find it by, once exec'd
    end = reported_end(worker, "7")  # the watch loop notes the tree while the robot lives
    assert end["leftovers"] == 1
    assert not alive(escaped)


def test_a_leftover_that_ignores_sigterm_is_killed_after_the_grace(worker: Worker) -> None:
    script = f"import subprocess, sys\nsubprocess.Popen(['setsid', sys.executable, '-c', {STUBBORN!r}])\n"
    run = worker.processes.start("8", [sys.executable, "-c", script])
    assert wait_until(lambda: "ready" in (run.run_dir / "stdout.log").read_text(), 10)
    assert wait_until(lambda: worker.processes.outcome(run) is not None, 10)
    [stubborn] = leftovers.find(run.mark, run.create_time, seen=set())
    worker.processes.end_leftovers([run], grace=0.3)
    assert run.leftovers == 1 and run.swept
    assert not alive(stubborn.pid)


@pytest.mark.parametrize("keep_leftovers", [False, True])
def test_an_agent_that_restarted_still_knows_a_runs_leftovers(
    tmp_path: Path, kept: list[int], keep_leftovers: bool
) -> None:
    state = tmp_path / "state"
    # An agent that starts a run and dies at once, without cleaning up (like kill -9); the robot ends meanwhile.
    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from robofleet.agents.worker import Worker\n"
        f"w = Worker(Path({str(state)!r}))\n"
        f"argv = [sys.executable, '-c', {ROBOT!r}, '0.5']\n"
        f"assert w.execute('c', 'process.start', {{'run_id': '9', 'argv': argv, 'keep_leftovers': {keep_leftovers}}})"
        "['ok']\n"
        "os._exit(0)\n"
    )
    become_subreaper()
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    stdout = state / "runs" / "9" / "stdout.log"
    assert wait_until(lambda: stdout.read_text().strip().isdigit(), 10)
    escaped = int(stdout.read_text())
    kept.append(escaped)
    worker = Worker(state)
    worker.hello()  # adopts the run
    try:
        end = reported_end(worker, "9")
        assert end["leftovers"] == (0 if keep_leftovers else 1)
        assert alive(escaped) == keep_leftovers
    finally:
        worker.processes.reap_orphans()


def test_keep_leftovers_must_be_a_boolean(worker: Worker) -> None:
    outcome = worker.execute("bad", "process.start", {"run_id": "10", "argv": ["true"], "keep_leftovers": "no"})
    assert outcome["error"]["code"] == "bad_args" and "keep_leftovers" in outcome["error"]["message"]
