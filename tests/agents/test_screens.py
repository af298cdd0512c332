"""Screenshots of a session: the Tk demo robot started in it draws its window, and the picture shows it in every
format and size asked; an etag skips an unchanged screen; unknown and unhealthy sessions are refused clearly."""

from __future__ import annotations

import base64
import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from robofleet.agents import screens
from robofleet.agents.worker import Worker
from tests.agents.conftest import call, colour_share, healthy, refused, screenshot_png, spec, start_tk
from tests.conftest import wait_until


def test_a_robot_started_with_a_session_draws_in_it_and_the_screenshot_shows_its_window(
    display_worker: Worker, tmp_path: Path
) -> None:
    session = spec("desk", width=1024, height=768)
    started = start_tk(display_worker, "1", session, tmp_path / "events.jsonl")  # waits for the window to show
    assert started["alive"]
    robot = display_worker.processes.robot_pid(display_worker.processes.runs["1"])
    assert robot is not None
    environment = (Path("/proc") / str(robot) / "environ").read_bytes().split(b"\0")
    assert f"DISPLAY={display_worker.displays.status('desk')['display']}".encode() in environment

    picture = screenshot_png(display_worker, "desk")
    image = Image.open(io.BytesIO(picture))
    assert image.format == "PNG" and image.size == (1024, 768)
    assert colour_share(picture) > 0.5  # not blank: most of the screen is the robot's window

    for image_format, content_type, tolerance in [("jpeg", "image/jpeg", 12), ("webp", "image/webp", 12)]:
        shot = call(display_worker, "session.screenshot", {"name": "desk", "format": image_format, "quality": 70})
        assert shot["content_type"] == content_type and not shot["unchanged"]
        data = base64.b64decode(shot["data"])
        assert Image.open(io.BytesIO(data)).format == image_format.upper()
        assert colour_share(data, tolerance=tolerance) > 0.5

    scaled = call(display_worker, "session.screenshot", {"name": "desk", "format": "jpeg", "scale": 0.5})
    assert (scaled["width"], scaled["height"]) == (512, 384) and (scaled["screen_width"], scaled["screen_height"]) == (
        1024,
        768,
    )
    assert Image.open(io.BytesIO(base64.b64decode(scaled["data"]))).size == (512, 384)
    narrow = call(display_worker, "session.screenshot", {"name": "desk", "max_width": 256})
    assert (narrow["width"], narrow["height"]) == (256, 192)


def test_an_etag_that_matches_answers_unchanged_without_a_picture_and_a_changed_screen_a_new_one(
    display_worker: Worker, tmp_path: Path
) -> None:
    session = spec("still")
    start_tk(display_worker, "2", session, tmp_path / "events.jsonl")
    first = call(display_worker, "session.screenshot", {"name": "still", "format": "jpeg"})
    again = call(display_worker, "session.screenshot", {"name": "still", "format": "jpeg", "etag": first["etag"]})
    assert again["unchanged"] and "data" not in again and again["etag"] == first["etag"]
    other_shape = call(display_worker, "session.screenshot", {"name": "still", "format": "png", "etag": first["etag"]})
    assert not other_shape["unchanged"] and other_shape["data"]  # the etag covers the format args too

    call(display_worker, "session.input", {"name": "still", "kind": "type", "text": "changed"})

    def new_picture() -> dict[str, Any] | None:
        shot = call(display_worker, "session.screenshot", {"name": "still", "format": "jpeg", "etag": first["etag"]})
        return None if shot["unchanged"] else dict(shot)

    changed = wait_until(new_picture, 10, message="the typed text on the screen")
    assert changed["etag"] != first["etag"] and changed["data"]


def test_screenshots_are_never_remembered_by_command_id(display_worker: Worker) -> None:
    healthy(display_worker, spec("fresh"))
    first = display_worker.execute("same-id", "session.screenshot", {"name": "fresh", "format": "png"})
    assert first["ok"]
    display_worker.displays.restart("fresh")  # a new, blank display: the same picture, taken again
    again = display_worker.execute("same-id", "session.screenshot", {"name": "fresh", "format": "png"})
    assert again["ok"] and again is not first
    assert "same-id" not in display_worker._results


def test_a_screenshot_of_an_unknown_or_unhealthy_session_is_refused_with_why(display_worker: Worker) -> None:
    unknown = refused(display_worker, "session.screenshot", {"name": "nowhere"})
    assert unknown["code"] == "not_found" and "no session nowhere" in unknown["message"]

    taken = healthy(display_worker, spec("holder"))
    call(display_worker, "session.sync", {"sessions": [spec("holder"), spec("clash", display=taken["display"])]})
    wait_until(lambda: display_worker.displays.status("clash")["state"] == "failed", 10)
    unhealthy = refused(display_worker, "session.screenshot", {"name": "clash"})
    assert unhealthy["code"] == "unhealthy" and f"display {taken['display']} is in use" in unhealthy["message"]

    status = healthy(display_worker, spec("dying", restart="never"))
    os.kill(status["pid"], signal.SIGKILL)
    wait_until(lambda: display_worker.displays.status("dying")["state"] == "failed", 10)
    dead = refused(display_worker, "session.screenshot", {"name": "dying"})
    assert dead["code"] == "unhealthy" and "session dying is not healthy" in dead["message"]

    for wrong in [{"format": "gif"}, {"quality": 0}, {"scale": 1.5}, {"scale": 0}, {"max_width": -3}]:
        error = refused(display_worker, "session.screenshot", {"name": "holder", **wrong})
        assert error["code"] == "bad_args", (wrong, error)


def test_a_run_whose_session_cannot_be_healthy_does_not_start_and_says_why(
    display_worker: Worker, tmp_path: Path
) -> None:
    taken = healthy(display_worker, spec("mine"))
    error = refused(
        display_worker,
        "process.start",
        {
            "run_id": "3",
            "argv": ["true"],
            "session": spec("theirs", display=taken["display"]),
            "session_wait_seconds": 5,
        },
    )
    assert error["code"] == "session_unhealthy"
    assert error["message"].startswith("session theirs is not healthy: display ")
    assert "3" not in display_worker.processes.runs


def test_an_answer_over_the_agents_limit_is_refused_with_advice_not_sent(display_worker: Worker) -> None:
    healthy(display_worker, spec("big", width=1024, height=768))
    png = call(display_worker, "session.screenshot", {"name": "big", "format": "png"})
    display_worker.result_limit = len(png["data"]) - 1  # as 24 MiB is to a busy 4K screen's PNG
    error = refused(display_worker, "session.screenshot", {"name": "big", "format": "png"})
    assert error["code"] == "too_large" and "jpeg" in error["message"] and "max_width" in error["message"]
    small = call(display_worker, "session.screenshot", {"name": "big", "format": "jpeg", "max_width": 320})
    assert small["width"] == 320


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The X server `pid` stopped (SIGSTOP): connected to, it never answers, as a hung server does."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def answers_within(seconds: float, work: Callable[[], Any]) -> tuple[Any, float]:
    """What `work` returns and how long it took, asserting it did within `seconds`."""
    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    began = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert done, f"no answer within {seconds} s"
    return done[0], time.monotonic() - began


def test_a_frozen_display_costs_a_bounded_wait_and_the_keeper_replaces_it(display_worker: Worker) -> None:
    status = healthy(display_worker, spec("frozen", record_seconds=5))
    wait_until(lambda: display_worker.displays.frames("frozen"), 10, message="a recorded frame")
    with frozen(status["pid"]):
        began = time.monotonic()
        with pytest.raises(screens.ScreenError, match=r"did not answer within 0\.5 s"):
            screens.grab(status["display"], timeout=0.5)
        assert time.monotonic() - began < 1.5
        error, took = answers_within(6, lambda: refused(display_worker, "session.screenshot", {"name": "frozen"}))
        assert error["code"] == "unhealthy" and took < 4.5, (error, took)
        # The watchdog's recording grabs never hold the session: its status answers at once, again and again.
        for _ in range(6):
            _, took = answers_within(2.5, lambda: display_worker.displays.status("frozen"))
            time.sleep(0.5)
        # And the watchdog itself goes on: it finds the server hung and starts a new one.
        again = wait_until(
            lambda: (
                (s := display_worker.displays.status("frozen"))["pid"] != status["pid"]
                and s["state"] == "healthy"
                and s
            ),
            30,
            message=lambda: display_worker.displays.status("frozen"),
        )
    assert "does not answer" in " ".join(event["reason"] or "" for event in again["events"])
    assert call(display_worker, "session.screenshot", {"name": "frozen", "format": "jpeg"})["data"]
