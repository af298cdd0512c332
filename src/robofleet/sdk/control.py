"""The pause handshake between an agent and its robot, as small files in the run's control directory (the agent
makes one per run and names it in ROBOFLEET_CONTROL_DIR). Both sides import these names.

    checkpoints  the robot pauses at checkpoints; the pid to wake with SIGUSR1        (written by the robot)
    pause        a pause is asked; the request's id                                    (written by the agent)
    paused       the robot holds at a checkpoint; the id of the request it honours     (written by the robot)

An acknowledgement counts only for the request it names: a robot leaving a checkpoint just as a new pause is
asked cannot be taken for paused.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CONTROL_DIR_ENV = "ROBOFLEET_CONTROL_DIR"
DECLARED = "checkpoints"
REQUEST = "pause"
ACKNOWLEDGED = "paused"


def read(directory: Path, name: str) -> str | None:
    """The file's text, or None when it is not there (or cannot be read)."""
    try:
        return (directory / name).read_text().strip()
    except OSError:
        return None


def write(directory: Path, name: str, text: str) -> None:
    temporary = directory / f".{name}.{os.getpid()}.tmp"
    temporary.write_text(text)
    os.replace(temporary, directory / name)  # atomic: the other side never reads half a file


def remove(directory: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / name).unlink()
