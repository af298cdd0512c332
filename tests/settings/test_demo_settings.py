"""examples/demo.toml, the settings of `make serve`, as a new user copies them (issue 15, defect 8): each demo robot
that imports robofleet runs with an interpreter that has it installed, not a python3 from PATH."""

from __future__ import annotations

import subprocess
from pathlib import Path

from robofleet.settings.loader import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_demo_robots_that_import_robofleet_run_with_an_interpreter_that_has_it() -> None:
    settings = load_settings(REPO / "examples" / "demo.toml", {})
    checked = 0
    for robot in settings.robots:
        cwd = REPO / (robot.cwd or ".")
        script = cwd / robot.argv[1]
        if "robofleet" not in script.read_text():
            continue
        interpreter = cwd / robot.argv[0]
        assert interpreter.exists(), f"{robot.name}: {robot.argv[0]} is not a path to the virtualenv's Python"
        found = subprocess.run([str(interpreter), "-c", "import robofleet.sdk"], capture_output=True, timeout=60)
        assert found.returncode == 0, (robot.name, found.stderr)
        checked += 1
    assert checked >= 1
