"""`robofleet ARGS` run as its user runs it: a process of its own, an environment without the runner's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROBOFLEET = [sys.executable, "-m", "robofleet"]


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def clean_environ(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its ROBOFLEET_* variables (a developer's own must not leak in), then
    `env`."""
    kept = {key: value for key, value in os.environ.items() if not key.upper().startswith("ROBOFLEET_")}
    return {**kept, **(env or {})}


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 60
) -> CliResult:
    """`robofleet ARGS` in `cwd`, with `clean_environ(env)` and `stdin` as its input; its exit code and output.

    Fails (subprocess.TimeoutExpired) if it is still running after `timeout` seconds."""
    done = subprocess.run(
        [*ROBOFLEET, *args],
        cwd=cwd,
        env=clean_environ(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
