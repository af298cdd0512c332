"""`robofleet.sdk.checkpoint()` and `wait()` in real robot processes, driven the way an agent drives them: files
in the control directory and real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from robofleet.sdk import control
from tests.conftest import wait_until

TIGHT_LOOP = """
import json, os, time
from robofleet import sdk
sdk.checkpoint()
before = os.times()
for _ in range(1_000_000):
    sdk.checkpoint()
after = os.times()
print(json.dumps({"user": after.user - before.user, "system": after.system - before.system}))
"""

SLEEPER = """
from robofleet import sdk
sdk.install(checkpoints=True)
beats = 0
while not sdk.wait(0.05 if beats < 3 else 30):
    beats += 1
    print("beat", beats, flush=True)
print("left", flush=True)
"""


@pytest.fixture
def control_dir(tmp_path: Path) -> Path:
    made = tmp_path / "control"
    made.mkdir()
    return made


def robot(code: str, control_dir: Path | None, tmp_path: Path) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if key != control.CONTROL_DIR_ENV}
    if control_dir is not None:
        env[control.CONTROL_DIR_ENV] = str(control_dir)
    out = (tmp_path / "out.log").open("w")
    return subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def lines(tmp_path: Path) -> list[str]:
    return (tmp_path / "out.log").read_text().splitlines()


def ask(control_dir: Path, process: subprocess.Popen[str], request: str) -> None:
    control.write(control_dir, control.REQUEST, request)
    process.send_signal(signal.SIGUSR1)


@pytest.mark.parametrize("in_a_run", [True, False], ids=["declared", "outside-robofleet"])
def test_a_tight_loop_of_checkpoints_spends_no_time_in_the_kernel(
    in_a_run: bool, control_dir: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", TIGHT_LOOP],
        env={**os.environ, control.CONTROL_DIR_ENV: str(control_dir) if in_a_run else ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    spent = json.loads(done.stdout)
    assert spent["system"] < 0.05, spent  # a stat() per call would cost a second of system time here
    assert spent["user"] < 5, spent
    assert (control.read(control_dir, control.DECLARED) is not None) is in_a_run


def test_a_robot_waiting_between_steps_pauses_there_and_a_stop_ends_it_at_once(
    control_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    process = robot(SLEEPER, control_dir, tmp_path)
    processes.append(process)
    wait_until(lambda: "beat 3" in lines(tmp_path), 10)
    assert control.read(control_dir, control.DECLARED) == str(process.pid)
    ask(control_dir, process, "first")  # it sleeps in wait(30): the signal wakes it, it holds
    wait_until(lambda: control.read(control_dir, control.ACKNOWLEDGED) == "first", 2)
    control.remove(control_dir, control.REQUEST)
    process.send_signal(signal.SIGUSR1)
    wait_until(lambda: control.read(control_dir, control.ACKNOWLEDGED) is None, 2)  # resumed: waits on
    ask(control_dir, process, "second")
    wait_until(lambda: control.read(control_dir, control.ACKNOWLEDGED) == "second", 2)
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(5) == 0 and time.monotonic() - began < 1.0
    assert lines(tmp_path) == ["beat 1", "beat 2", "beat 3", "left"]
    assert control.read(control_dir, control.ACKNOWLEDGED) is None


def test_an_acknowledgement_names_the_request_it_honours(
    control_dir: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    code = "from robofleet import sdk\nwhile not sdk.checkpoint():\n    print('step', flush=True)\n    sdk.wait(0.02)\n"
    process = robot(code, control_dir, tmp_path)
    processes.append(process)
    wait_until(lambda: len(lines(tmp_path)) > 3, 10)
    ask(control_dir, process, "one")
    wait_until(lambda: control.read(control_dir, control.ACKNOWLEDGED) == "one", 2)
    held = len(lines(tmp_path))
    ask(control_dir, process, "two")  # withdrawn and asked again while it held: it holds on, for "two"
    wait_until(lambda: control.read(control_dir, control.ACKNOWLEDGED) == "two", 2)
    time.sleep(0.3)
    assert len(lines(tmp_path)) == held
    control.remove(control_dir, control.REQUEST)
    process.send_signal(signal.SIGUSR1)
    wait_until(lambda: len(lines(tmp_path)) > held + 3, 2)


def test_checkpoints_outside_a_run_change_nothing(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    code = "from robofleet import sdk\nfor _ in range(3):\n    sdk.checkpoint()\n    print('step', flush=True)\n"
    process = robot(code, None, tmp_path)
    processes.append(process)
    assert process.wait(10) == 0 and lines(tmp_path) == ["step"] * 3
