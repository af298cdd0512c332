"""The Makefile's choice of Python on a pyenv machine (issue 15, defect 8): a pyenv shim of a version that is not
installed exists on PATH but fails, printing "command not found"; the probe skips it quietly and picks the first
interpreter that runs and is 3.11 or newer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PYENV_SHIM = """#!/bin/sh
echo "pyenv: {name}: command not found" >&2
echo "The '{name}' command exists in these Python versions:" >&2
exit 127
"""
MAKE = shutil.which("make") or "make"


def fake_path(folder: Path) -> Path:
    """python3.14 and python3.13 as pyenv shims of versions not installed; python3.12 a working interpreter."""
    folder.mkdir()
    for name in ("python3.14", "python3.13"):
        (folder / name).write_text(PYENV_SHIM.format(name=name))
        (folder / name).chmod(0o755)
    (folder / "python3.12").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (folder / "python3.12").chmod(0o755)
    return folder


def test_the_python_probe_is_quiet_and_skips_pyenv_shims(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = subprocess.run(
        [MAKE, "--no-print-directory", "-n", f"VENV={venv}", f"{venv}/bin/python"],
        cwd=REPO,
        env={"PATH": str(fake_path(tmp_path / "bin")), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""  # no "command not found" from the shims
    assert f"python3.12 -m venv {venv}" in made.stdout
