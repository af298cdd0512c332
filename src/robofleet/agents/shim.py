"""The run shim: `python -m robofleet.agents.shim RUN_DIR -- ARGV...`.

The agent starts every robot through this small process, the leader of the run's own session. It outlives the
agent (and `robofleet serve`): its output goes to files, not to a pipe whose reader may die; it forwards a safe
stop to the robot; and when the robot ends it writes how to RUN_DIR/outcome.json (the exit code or signal, why it
could not start, and for a failure the exception of the last traceback or the last ERROR line it wrote on stderr),
so an agent that comes back later still learns how the run ended and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
# How much of the end of stderr a failure's reason is looked for in: a traceback and the lines before it.
TAIL_BYTES = 64 * 1024
REASON_CHARS = 300
TRACEBACK = re.compile(r"^Traceback \(most recent call last\):\s*$")
# A line that carries a level of ERROR or worse, in logging's and loguru's usual shapes: "ERROR:root:...",
# "2026-12-06 08:00:00,123 ERROR ...", "[ERROR] ...", "... | ERROR    | module:function:12 - ...".
ERROR_LINE = re.compile(r"(?:^|[\s\[|:])(ERROR|CRITICAL|FATAL)(?=[\s\]|:])")


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
        why = f"cannot start {command[0]!r}: {exc.strerror}"
        stderr.write(f"robofleet: {why}\n".encode())
        write_outcome(run_dir, 127, None, spawn_error=why)
        return 127

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            robot.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    (run_dir / "robot.pid").write_text(str(robot.pid))
    code = robot.wait()
    exit_code = code if code >= 0 else 128 - code
    reason = last_error(read_tail(run_dir / "stderr.log")) if code != 0 else None
    write_outcome(run_dir, exit_code, -code if code < 0 else None, last_error=reason)
    return exit_code


def read_tail(path: Path, size: int = TAIL_BYTES) -> str:
    with contextlib.suppress(OSError), path.open("rb") as file:
        file.seek(max(0, file.seek(0, os.SEEK_END) - size))
        return file.read().decode(errors="replace")
    return ""


def last_error(text: str) -> str | None:
    """Why a robot that failed says it failed, from the end of what it wrote on stderr: the exception line of its
    last traceback ("ConnectionError: portal down"), or its last line at ERROR or worse, whichever came later;
    None when it said neither. At most REASON_CHARS characters."""
    lines = text.splitlines()
    found: tuple[int, str] | None = None
    for index in range(len(lines) - 1, -1, -1):
        if TRACEBACK.match(lines[index]):
            # The exception is the first line after the frames that is not indented (frames and carets are).
            after = range(index + 1, len(lines))
            at = next((i for i in after if lines[i].strip() and not lines[i][0].isspace()), None)
            if at is not None:
                found = (at, lines[at])
            break
    for index in range(len(lines) - 1, -1, -1):
        if found is not None and index <= found[0]:
            break
        match = ERROR_LINE.search(lines[index])
        if match is not None:
            found = (index, lines[index][match.start(1) :])
            break
    if found is None:
        return None
    reason = " ".join(found[1].split())
    return reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 1] + "…"


def write_outcome(
    run_dir: Path,
    exit_code: int,
    killed_by: int | None,
    *,
    spawn_error: str | None = None,
    last_error: str | None = None,
) -> None:
    outcome: dict[str, object] = {"exit_code": exit_code, "signal": killed_by, "ended_at": time.time()}
    if spawn_error is not None:
        outcome["spawn_error"] = spawn_error
    if last_error is not None:
        outcome["last_error"] = last_error
    temporary = run_dir / "outcome.json.tmp"
    temporary.write_text(json.dumps(outcome))
    os.replace(temporary, run_dir / "outcome.json")  # atomic: a reader never sees half a file


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
