"""The run shim: `python -m robofleet.agents.shim RUN_DIR -- ARGV...`.

The agent starts every robot through this small process, the leader of the run's own session. It outlives the
agent (and `robofleet serve`): its output goes to files, not to a pipe whose reader may die; it forwards a safe
stop to the robot; and when the robot ends it writes the exit code to RUN_DIR/exit_code, so an agent that comes
back later still learns how the run ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m robofleet.agents.shim RUN_DIR -- ARGV...", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    command = argv[2:]
    stdout = (run_dir / "stdout.log").open("ab", buffering=0)
    stderr = (run_dir / "stderr.log").open("ab", buffering=0)
    # A write to a closed terminal or pipe must not kill the shim: its only job is to outlive everything.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        robot = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, cwd=os.getcwd(), restore_signals=True
        )
    except OSError as exc:
        stderr.write(f"robofleet: cannot start {command[0]!r}: {exc.strerror}\n".encode())
        write_outcome(run_dir, 127, None)
        return 127

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            robot.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    (run_dir / "robot.pid").write_text(str(robot.pid))
    code = robot.wait()
    write_outcome(run_dir, code if code >= 0 else 128 - code, -code if code < 0 else None)
    return code if code >= 0 else 128 - code


def write_outcome(run_dir: Path, exit_code: int, killed_by: int | None) -> None:
    outcome = {"exit_code": exit_code, "signal": killed_by, "ended_at": time.time()}
    temporary = run_dir / "outcome.json.tmp"
    temporary.write_text(json.dumps(outcome))
    os.replace(temporary, run_dir / "outcome.json")  # atomic: a reader never sees half a file


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
