"""Reading a run's spool files: lines with their offsets, read again until committed, and a run's end reported only
once its output has been read to the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from robofleet.agents.spool import OUTPUT_CHUNK, Output
from robofleet.agents.worker import Worker
from tests.conftest import wait_until

# Prints `lines` numbered lines of `width` bytes to stdout (and a last word on stderr, without a newline), then exits.
PRINTER = (
    "import sys\n"
    "lines, width = int(sys.argv[1]), int(sys.argv[2])\n"
    "for n in range(lines):\n"
    "    sys.stdout.write(f'{n:08d} ' + 'x' * (width - 10) + '\\n')\n"
    "sys.stdout.flush()\n"
    "sys.stderr.write('done')\n"
)


def start(worker: Worker, run_id: str, lines: int, width: int = 100) -> None:
    started = worker.execute(
        f"start-{run_id}",
        "process.start",
        {"run_id": run_id, "argv": [sys.executable, "-c", PRINTER, str(lines), str(width)]},
    )
    assert started["ok"], started
    run = worker.processes.runs[run_id]
    wait_until(lambda: worker.processes.outcome(run) is not None, 20)


def numbers(lines: list[dict[str, Any]]) -> list[int]:
    return [int(line["line"][:8]) for line in lines if line["stream"] == "stdout"]


def test_lines_are_read_again_by_a_restarted_agent_until_committed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    worker = Worker(state)
    start(worker, "1", 50)
    first = worker.new_output()
    assert numbers(first.lines) == list(range(50))
    assert [line["offset"] for line in first.lines[:3]] == [0, 100, 200]
    assert first.lines[-1] == {"run_id": "1", "label": "", "stream": "stderr", "line": "done", "offset": 0}
    assert first.positions == {"1": {"stdout": 5000, "stderr": 4}}
    assert worker.new_output().lines == []  # read once in this agent's life

    restarted = Worker(state)  # died before the lines were delivered: they are read again
    restarted.hello()
    assert restarted.new_output().lines == first.lines
    restarted.commit_output(first.positions)
    again = Worker(state)
    again.hello()
    assert again.new_output().lines == []


def test_a_rewind_reads_again_what_was_not_committed(tmp_path: Path) -> None:
    worker = Worker(tmp_path / "state")
    start(worker, "2", 10)
    output = worker.new_output()
    worker.commit_output(output.split(4)[0].positions)
    worker.rewind_output()
    assert numbers(worker.new_output().lines) == list(range(4, 10))


def test_an_ended_run_is_finished_only_once_its_output_is_read_to_the_end(tmp_path: Path) -> None:
    worker = Worker(tmp_path / "state")
    lines, width = 40_000, 100  # 4 MB: several reads of OUTPUT_CHUNK each
    start(worker, "3", lines, width)
    read: list[dict[str, Any]] = []
    reads = 0
    while not worker.finished_runs():  # the run has ended: only unread output holds its end back
        read += worker.new_output().lines
        reads += 1
        assert reads < 20
    assert reads > lines * width // OUTPUT_CHUNK  # one read per chunk, and the run was finished after the last
    assert numbers(read) == list(range(lines))
    assert [line["line"] for line in read if line["stream"] == "stderr"] == ["done"]
    assert worker.finished_runs()[0]["exit_code"] == 0
    worker.collect("3")
    assert worker.finished_runs() == [] and worker.new_output().lines == []


def test_split_parts_carry_the_positions_right_after_their_own_lines() -> None:
    lines = [{"run_id": "1", "stream": "stdout", "offset": n * 10, "line": str(n)} for n in range(5)]
    lines += [{"run_id": "1", "stream": "stderr", "offset": n * 3, "line": "e"} for n in range(2)]
    lines += [{"run_id": "2", "stream": "stdout", "offset": 70, "line": "x"}]
    output = Output(lines, {"1": {"stdout": 50, "stderr": 6}, "2": {"stdout": 75}})
    parts = output.split(3)
    assert [len(part.lines) for part in parts] == [3, 3, 2]
    assert parts[0].positions == {"1": {"stdout": 30, "stderr": 0}, "2": {"stdout": 70}}
    assert parts[1].positions == {"1": {"stdout": 50, "stderr": 3}, "2": {"stdout": 70}}
    assert parts[2].positions == output.positions
    assert Output([], {}).split(3) == []
