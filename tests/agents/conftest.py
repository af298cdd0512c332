"""A worker with graphical sessions, driven directly: real Xvfb displays, real robots (the Tk demo), real xdotool.
Whatever a test started (robots, displays) is ended when it ends, and no Xvfb of its is left running."""

from __future__ import annotations

import base64
import io
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from PIL import Image

from robofleet.agents.worker import Worker
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
TK_WINDOW = [sys.executable, str(ROOT / "examples" / "robots" / "tk_window.py")]
TK_COLOUR = (0x33, 0x66, 0xCC)


def spec(name: str, **given: Any) -> dict[str, Any]:
    """A session spec as the orchestrator sends it: Xvfb, 800x600 unless said otherwise."""
    return {
        "name": name,
        "kind": "xvfb",
        "display": None,
        "width": 800,
        "height": 600,
        "depth": 24,
        "window_manager": None,
        "restart": "always",
        "record_seconds": 0,
        **given,
    }


def call(worker: Worker, name: str, args: dict[str, Any]) -> Any:
    """The result of a command that must succeed."""
    outcome = worker.execute(uuid.uuid4().hex, name, args)
    assert outcome["ok"], outcome
    return outcome["result"]


def refused(worker: Worker, name: str, args: dict[str, Any]) -> dict[str, str]:
    """The error of a command that must be refused."""
    outcome = worker.execute(uuid.uuid4().hex, name, args)
    assert not outcome["ok"], outcome
    return dict(outcome["error"])


def healthy(worker: Worker, session: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    """Sync `session` (with the others the worker keeps) and wait until it is healthy: its status."""
    kept = [s.spec.as_dict() for s in worker.displays.sessions.values() if s.spec.name != session["name"]]
    call(worker, "session.sync", {"sessions": [*kept, session]})
    return dict(
        wait_until(
            lambda: (status := worker.displays.status(session["name"]))["state"] == "healthy" and status,
            timeout,
            message=lambda: f"session {session['name']} healthy: {worker.displays.status(session['name'])}",
        )
    )


def start_tk(worker: Worker, run_id: str, session: dict[str, Any], events: Path, *extra: str) -> dict[str, Any]:
    """The Tk demo robot in `session`, recording to `events`; returns once its window shows."""
    started = call(
        worker,
        "process.start",
        {"run_id": run_id, "argv": [*TK_WINDOW, *extra], "env": {"TK_WINDOW_EVENTS": str(events)}, "session": session},
    )
    wait_until(
        lambda: colour_share(screenshot_png(worker, session["name"])) > 0.5,
        20,
        message=f"the Tk window of run {run_id} on the screen",
    )
    return dict(started)


def screenshot_png(worker: Worker, name: str) -> bytes:
    return base64.b64decode(call(worker, "session.screenshot", {"name": name, "format": "png"})["data"])


def colour_share(picture: bytes, colour: tuple[int, int, int] = TK_COLOUR, tolerance: int = 6) -> float:
    """The share of the picture's pixels that have `colour` (give or take `tolerance` per channel: JPEG)."""
    image = Image.open(io.BytesIO(picture)).convert("RGB")
    # Every fourth pixel each way is plenty to tell a window from a blank screen, and sixteen times faster.
    image = image.resize((max(1, image.width // 4), max(1, image.height // 4)), Image.Resampling.NEAREST)
    pixels = image.get_flattened_data() if hasattr(image, "get_flattened_data") else image.getdata()
    near = sum(1 for pixel in pixels if all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True)))
    return near / (image.width * image.height)


def ended_runs(worker: Worker, timeout: float = 15) -> list[dict[str, Any]]:
    """The runs that ended, as the agent's watch loop learns them (their output read to the end first)."""

    def finished() -> list[dict[str, Any]]:
        worker.new_output()
        return worker.finished_runs()

    return wait_until(finished, timeout, interval=0.2, message="a run's end")


def xvfb_pids(worker: Worker) -> set[int]:
    return {s.display.pid for s in worker.displays.sessions.values() if s.display is not None and s.display.pid}


@pytest.fixture
def display_worker(tmp_path: Path) -> Iterator[Worker]:
    """A worker whose robots and displays all end with the test."""
    worker = Worker(tmp_path / "state")
    try:
        yield worker
    finally:
        stop_everything(worker)


def stop_everything(worker: Worker) -> None:
    for run in list(worker.processes.runs.values()):
        worker.processes.kill(run)
    started = xvfb_pids(worker)
    worker.displays.stop_all()
    worker.close()
    left = [pid for pid in started if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert not left, f"Xvfb left running: {left}"
