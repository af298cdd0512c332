"""Robot process trees under the agent's process manager: real processes, real signals, checked with psutil."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from robofleet.agents.processes import ManagedRun, ProcessManager, become_subreaper, wait_until

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
    assert wait_until(lambda: pids_file.exists() and len(pids_file.read_text().splitlines()) >= 3, 10)
    pids = {line.split()[0]: int(line.split()[1]) for line in pids_file.read_text().splitlines()}
    grandchild = [p for p in psutil.Process(pids["child"]).children() if p.pid != pids["escaped"]]
    pids["grandchild"] = grandchild[0].pid
    return run, pids


def test_output_goes_to_the_spool_and_a_finished_run_reports_its_exit_code(manager: ProcessManager) -> None:
    run = manager.start("r1", [*COUNTER, "--until", "3"])
    assert wait_until(lambda: manager.outcome(run) is not None, 10)
    assert output(run).splitlines() == ["count 1", "count 2", "count 3"]
    assert manager.outcome(run) == {"exit_code": 0, "signal": None, "ended_at": pytest.approx(time.time(), abs=10)}


def test_pause_freezes_and_resume_thaws_the_whole_tree(manager: ProcessManager, tmp_path: Path) -> None:
    run, pids = spawn_tree(manager, tmp_path)
    manager.pause(run)
    frozen = lambda: all(psutil.Process(pid).status() == psutil.STATUS_STOPPED for pid in pids.values())  # noqa: E731
    assert wait_until(frozen, 5), {name: psutil.Process(pid).status() for name, pid in pids.items()}
    manager.resume(run)
    assert wait_until(lambda: not any(psutil.Process(p).status() == psutil.STATUS_STOPPED for p in pids.values()), 5)


def test_kill_leaves_no_process_and_no_zombie(manager: ProcessManager, tmp_path: Path) -> None:
    run, pids = spawn_tree(manager, tmp_path)
    manager.pause(run)  # even a frozen tree dies
    manager.kill(run)
    assert wait_until(lambda: all(gone(pid) for pid in pids.values()), 5)
    manager.reap_orphans()
    assert wait_until(lambda: all(not psutil.pid_exists(pid) for pid in pids.values()), 5), {
        name: psutil.Process(pid).status() for name, pid in pids.items() if psutil.pid_exists(pid)
    }
    assert manager.outcome(run)["exit_code"] is None  # type: ignore[index]


def test_safe_stop_reaches_a_paused_robot(manager: ProcessManager) -> None:
    run = manager.start("r2", COUNTER)
    assert wait_until(lambda: "count 2" in output(run), 10)
    manager.pause(run)
    manager.terminate(run)
    assert wait_until(lambda: manager.outcome(run) is not None, 10)
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
    assert wait_until(lambda: len(output(run).splitlines()) > before + 3, 10)  # still writing: no SIGPIPE
    assert wait_until(lambda: manager.outcome(run) is not None, 15)
    assert manager.outcome(run)["exit_code"] == 0  # type: ignore[index]
    manager.collect(run)
    assert ProcessManager(state).adopt() == []


def test_bad_starts_are_refused(manager: ProcessManager, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        manager.start("empty", [])
    with pytest.raises(OSError):
        manager.start("nowhere", COUNTER, cwd=str(tmp_path / "missing"))
    run = manager.start("noprog", ["/nonexistent/robot"])
    assert wait_until(lambda: manager.outcome(run) is not None, 10)
    assert manager.outcome(run)["exit_code"] == 127  # type: ignore[index]
    assert "cannot start" in (run.run_dir / "stderr.log").read_text()
