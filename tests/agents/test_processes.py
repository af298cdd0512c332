"""Robot process trees under the agent's process manager: real processes, real signals, checked with psutil."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from robofleet.agents import owned
from robofleet.agents.processes import ManagedRun, ProcessManager, become_subreaper
from tests.conftest import wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "robots"
COUNTER = [sys.executable, str(EXAMPLES / "counter.py"), "--every", "0.05"]


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[ProcessManager]:
    become_subreaper()
    made = ProcessManager(tmp_path / "agent-state")
    yield made
    for run in list(made.runs.values()):
        made.kill(run)
    made.reap_orphans()


def output(run: ManagedRun) -> str:
    return (run.run_dir / "stdout.log").read_text()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def spawn_tree(manager: ProcessManager, tmp_path: Path) -> tuple[ManagedRun, dict[str, int]]:
    pids_file = tmp_path / "pids.txt"
    run = manager.start("tree", [sys.executable, str(EXAMPLES / "spawner.py"), "--pids", str(pids_file)])
    wait_until(lambda: pids_file.exists() and len(pids_file.read_text().splitlines()) >= 3, 10)
    pids = {line.split()[0]: int(line.split()[1]) for line in pids_file.read_text().splitlines()}
    grandchild = [p for p in psutil.Process(pids["child"]).children() if p.pid != pids["escaped"]]
    pids["grandchild"] = grandchild[0].pid
    return run, pids


def test_output_goes_to_the_spool_and_a_finished_run_reports_its_exit_code(manager: ProcessManager) -> None:
    run = manager.start("r1", [*COUNTER, "--until", "3"])
    wait_until(lambda: manager.outcome(run) is not None, 10)
    assert output(run).splitlines() == ["count 1", "count 2", "count 3"]
    assert manager.outcome(run) == {"exit_code": 0, "signal": None, "ended_at": pytest.approx(time.time(), abs=10)}


def test_pause_freezes_and_resume_thaws_the_whole_tree(manager: ProcessManager, tmp_path: Path) -> None:
    run, pids = spawn_tree(manager, tmp_path)
    manager.pause(run)
    frozen = lambda: all(psutil.Process(pid).status() == psutil.STATUS_STOPPED for pid in pids.values())  # noqa: E731
    wait_until(frozen, 5, message=lambda: {name: psutil.Process(pid).status() for name, pid in pids.items()})
    manager.resume(run)
    wait_until(lambda: not any(psutil.Process(p).status() == psutil.STATUS_STOPPED for p in pids.values()), 5)


def test_kill_leaves_no_process_and_no_zombie(manager: ProcessManager, tmp_path: Path) -> None:
    run, pids = spawn_tree(manager, tmp_path)
    manager.pause(run)  # even a frozen tree dies
    manager.kill(run)
    wait_until(lambda: all(gone(pid) for pid in pids.values()), 5)
    manager.reap_orphans()
    wait_until(
        lambda: all(not psutil.pid_exists(pid) for pid in pids.values()),
        5,
        message=lambda: {name: psutil.Process(pid).status() for name, pid in pids.items() if psutil.pid_exists(pid)},
    )
    assert manager.outcome(run)["exit_code"] is None  # type: ignore[index]


def test_safe_stop_reaches_a_paused_robot(manager: ProcessManager) -> None:
    run = manager.start("r2", COUNTER)
    wait_until(lambda: "count 2" in output(run), 10)
    manager.pause(run)
    manager.terminate(run)
    wait_until(lambda: manager.outcome(run) is not None, 10)
    assert manager.outcome(run)["signal"] == signal.SIGTERM  # type: ignore[index]


def test_runs_outlive_their_agent_and_are_adopted_again(tmp_path: Path) -> None:
    state = tmp_path / "agent-state"
    # An agent that starts a run and then dies at once, without cleaning up (like kill -9).
    script = (
        "import sys, os\n"
        "from pathlib import Path\n"
        "from robofleet.agents.processes import ProcessManager\n"
        f"m = ProcessManager(Path({str(state)!r}))\n"
        f"m.start('survivor', {COUNTER!r} + ['--until', '40'])\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    manager = ProcessManager(state)
    adopted = manager.adopt()
    assert [run.run_id for run in adopted] == ["survivor"]
    run = adopted[0]
    assert manager.alive(run)
    before = len(output(run).splitlines())
    wait_until(lambda: len(output(run).splitlines()) > before + 3, 10)  # still writing: no SIGPIPE
    wait_until(lambda: manager.outcome(run) is not None, 15)
    assert manager.outcome(run)["exit_code"] == 0  # type: ignore[index]
    manager.collect(run)
    assert ProcessManager(state).adopt() == []


def test_bad_starts_are_refused(manager: ProcessManager, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        manager.start("empty", [])
    with pytest.raises(OSError):
        manager.start("nowhere", COUNTER, cwd=str(tmp_path / "missing"))
    run = manager.start("noprog", ["/nonexistent/robot"])
    wait_until(lambda: manager.outcome(run) is not None, 10)
    assert manager.outcome(run)["exit_code"] == 127  # type: ignore[index]
    assert "cannot start" in (run.run_dir / "stderr.log").read_text()


STEPWISE = [sys.executable, str(EXAMPLES / "stepwise.py")]


def robot_process(manager: ProcessManager, run: ManagedRun) -> psutil.Process:
    wait_until(lambda: manager.checkpoint_pid(run) is not None, 10, message="the robot to declare checkpoints")
    return psutil.Process(manager.checkpoint_pid(run))


def test_an_sdk_robot_pauses_at_its_checkpoint_alive_and_resumes(manager: ProcessManager) -> None:
    run = manager.start("coop", [*STEPWISE, "--step", "0.1"])
    robot = robot_process(manager, run)
    wait_until(lambda: "step 2 done" in output(run), 10)
    assert manager.ask_pause(run)
    wait_until(lambda: manager.pause_state(run) == "cooperative", 5)
    assert robot.status() != psutil.STATUS_STOPPED and not run.paused
    held = output(run)
    time.sleep(0.5)
    assert output(run) == held and held.endswith("done\n")
    manager.resume(run)
    assert manager.pause_state(run) is None
    wait_until(lambda: len(output(run)) > len(held) + 20, 5)


def test_a_safe_stop_reaches_a_robot_holding_at_a_checkpoint(manager: ProcessManager) -> None:
    run = manager.start("coop-stop", [*STEPWISE, "--step", "0.1"])
    robot_process(manager, run)
    assert manager.ask_pause(run)
    wait_until(lambda: manager.pause_state(run) == "cooperative", 5)
    manager.terminate(run)
    wait_until(lambda: manager.outcome(run) is not None, 5)
    assert manager.outcome(run)["exit_code"] == 0  # type: ignore[index]
    last = output(run).splitlines()[-1]
    assert last.startswith("left after step") and last.endswith("(stop requested)")


def test_a_robot_without_checkpoints_cannot_be_asked_to_pause(manager: ProcessManager) -> None:
    run = manager.start("plain", COUNTER)
    wait_until(lambda: "count 2" in output(run), 10)
    assert not manager.ask_pause(run)
    assert manager.pause_state(run) is None


def test_a_robot_late_for_its_checkpoint_is_frozen_after_all(manager: ProcessManager) -> None:
    run = manager.start("late", [*STEPWISE, "--step", "30"])
    robot = robot_process(manager, run)
    assert manager.ask_pause(run) and manager.pause_state(run) == "asked"
    manager.freeze_unless_at_checkpoint(run)
    assert manager.pause_state(run) == "frozen"
    wait_until(lambda: robot.status() == psutil.STATUS_STOPPED, 5)
    manager.resume(run)
    assert manager.pause_state(run) is None
    wait_until(lambda: robot.status() != psutil.STATUS_STOPPED, 5)


def test_a_run_paused_at_a_checkpoint_is_adopted_paused(tmp_path: Path) -> None:
    state = tmp_path / "agent-state"
    # An agent that starts a run, pauses it at a checkpoint and dies at once, without cleaning up (like kill -9).
    script = (
        "import os\n"
        "from pathlib import Path\n"
        "from robofleet.agents.processes import ProcessManager, wait_until\n"
        f"m = ProcessManager(Path({str(state)!r}))\n"
        f"run = m.start('held', {[*STEPWISE, '--step', '0.1']!r})\n"
        "assert wait_until(lambda: m.checkpoint_pid(run) is not None, 10)\n"
        "assert m.ask_pause(run)\n"
        "assert wait_until(lambda: m.pause_state(run) == 'cooperative', 5)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    manager = ProcessManager(state)
    try:
        [run] = manager.adopt()
        assert manager.alive(run) and manager.pause_state(run) == "cooperative"
        held = output(run)
        time.sleep(0.3)
        assert output(run) == held
        manager.resume(run)
        wait_until(lambda: len(output(run)) > len(held) + 20, 5)
    finally:
        for run in list(manager.runs.values()):
            manager.kill(run)
        manager.reap_orphans()


def test_the_orphan_reaper_leaves_a_child_whose_exit_another_part_reads(manager: ProcessManager) -> None:
    """An RDP client killed by a signal must say so (a logoff's exit 12 too): the reaper taking its zombie would
    leave its Popen reading 0. A child nobody owns is reaped."""
    owned_child = owned.own(subprocess.Popen(["sleep", "30"]))
    stray = subprocess.Popen(["sleep", "30"])
    owned_child.kill()
    stray.kill()
    wait_until(lambda: all(psutil.Process(p.pid).status() == psutil.STATUS_ZOMBIE for p in (owned_child, stray)), 5)
    assert manager.reap_orphans() >= 1
    assert owned_child.wait(5) == -signal.SIGKILL
    assert stray.poll() == 0  # its status went to the reaper: what a keeper's Popen would have read before


def test_the_agents_own_commands_keep_their_exit_codes_while_the_reaper_runs(manager: ProcessManager) -> None:
    """The remote shell's command and the helpers the agent asks things of (xdotool, xdpyinfo, xauth) are started
    owned: the reaper, running meanwhile, never takes their exit (a shell's `exit 3` answered 0 when it did)."""
    stop = threading.Event()

    def reaper() -> None:
        while not stop.is_set():
            manager.reap_orphans()

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        codes = [owned.run(["sh", "-c", f"exit {n % 5 + 1}"], timeout=10).returncode for n in range(150)]
    finally:
        stop.set()
        thread.join()
    assert codes == [n % 5 + 1 for n in range(150)]
