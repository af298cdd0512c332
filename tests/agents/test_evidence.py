"""Failure evidence: a run that fails, is terminated or is killed leaves a bundle on its agent (its process tree
as it was, the end of its output, its session's screenshot and recorded last seconds), kept until the
orchestrator drops it; a run that succeeds leaves none."""

from __future__ import annotations

import base64
import io
import os
import signal
import sys
import time
from pathlib import Path

from PIL import Image

from robofleet.agents.evidence import MAX_BUNDLES
from robofleet.agents.worker import Worker
from tests.agents.conftest import ROOT, TK_WINDOW, call, colour_share, ended_runs, healthy, refused, spec, start_tk


def test_a_failed_runs_bundle_has_its_process_tree_output_tail_and_screenshot(
    display_worker: Worker, tmp_path: Path
) -> None:
    start_tk(display_worker, "11", spec("desk"), tmp_path / "events.jsonl", "--fail-after", "4")
    time.sleep(0.5)
    display_worker.look_after_runs()  # the watch loop notes the living tree
    [ended] = ended_runs(display_worker, 20)
    assert ended["run_id"] == "11" and ended["exit_code"] == 3

    bundle = call(display_worker, "run.evidence", {"run_id": "11"})
    assert bundle["run_id"] == "11" and bundle["exit"]["exit_code"] == 3 and bundle["captured_at"]
    robot = [p for p in bundle["processes"] if any("tk_window.py" in part for part in p["cmdline"])]
    shim = [p for p in bundle["processes"] if "robofleet.agents.shim" in p["cmdline"]]
    assert robot and shim and robot[-1]["ppid"] == shim[0]["pid"]
    assert {"pid", "ppid", "name", "cmdline", "cpu_percent", "rss_bytes", "status"} <= set(robot[0])
    assert robot[0]["rss_bytes"] > 0
    texts = [(line["stream"], line["text"]) for line in bundle["output"]]
    assert ("stdout", "tk_window: step 2 done") in texts
    assert ("stderr", "RuntimeError: the robot gave up on purpose") in texts
    assert bundle["screenshot"]["content_type"] == "image/jpeg"
    assert Image.open(io.BytesIO(base64.b64decode(bundle["screenshot"]["data"]))).size == (800, 600)
    assert bundle["recording"] is None  # the session records nothing

    assert call(display_worker, "run.evidence", {"run_id": "11"})["captured_at"] == bundle["captured_at"]
    assert call(display_worker, "run.evidence_drop", {"run_id": "11"}) == {"dropped": True}
    assert refused(display_worker, "run.evidence", {"run_id": "11"})["code"] == "not_found"
    assert call(display_worker, "run.evidence_drop", {"run_id": "11"}) == {"dropped": False}


def test_a_terminated_run_keeps_the_screen_as_it_was_before_the_stop_and_its_last_seconds(
    display_worker: Worker, tmp_path: Path
) -> None:
    session = spec("recorded", record_seconds=3)
    start_tk(display_worker, "12", session, tmp_path / "events.jsonl")
    for text in ("one", "two", "three"):  # three frames of the window, each different
        call(display_worker, "session.input", {"name": "recorded", "kind": "type", "text": text})
        time.sleep(1)
    call(display_worker, "process.signal", {"run_id": "12", "action": "terminate"})
    [ended] = ended_runs(display_worker)
    assert ended["exit_code"] == 0  # it stopped cleanly, but it was stopped: that is worth a bundle

    bundle = call(display_worker, "run.evidence", {"run_id": "12"})
    assert bundle["processes"] and any("tk_window.py" in " ".join(p["cmdline"]) for p in bundle["processes"])
    assert colour_share(base64.b64decode(bundle["screenshot"]["data"])) > 0.5  # the window, before it closed
    recording = bundle["recording"]
    assert recording["content_type"] == "image/webp" and 2 <= recording["frames"] <= 4
    animation = Image.open(io.BytesIO(base64.b64decode(recording["data"])))
    # libwebp merges a frame equal to the one before into it: what adds up is the time shown.
    shown = 0
    for index in range(animation.n_frames):
        animation.seek(index)
        animation.load()  # a frame's duration is known once it is read
        shown += animation.info["duration"]
    assert animation.format == "WEBP" and shown == 1000 * recording["frames"]
    assert animation.size[0] <= 640


def test_a_killed_run_without_a_session_has_a_bundle_without_pictures(display_worker: Worker) -> None:
    counter = [sys.executable, str(ROOT / "examples" / "robots" / "counter.py"), "--every", "0.05"]
    call(display_worker, "process.start", {"run_id": "13", "argv": counter})
    time.sleep(0.5)
    call(display_worker, "process.signal", {"run_id": "13", "action": "kill"})
    ended_runs(display_worker)
    bundle = call(display_worker, "run.evidence", {"run_id": "13"})
    assert bundle["exit"]["signal"] == 9 or bundle["exit"]["exit_code"] != 0
    assert any("counter.py" in " ".join(p["cmdline"]) for p in bundle["processes"])  # noted right before the kill
    assert bundle["output"] and all(line["stream"] == "stdout" for line in bundle["output"])
    assert len(bundle["output"]) <= 100 and bundle["output"][-1]["text"].startswith("count ")
    assert bundle["screenshot"] is None and bundle["recording"] is None


def test_a_run_that_succeeds_leaves_no_bundle_and_bundles_are_kept_within_bounds(
    display_worker: Worker, tmp_path: Path
) -> None:
    call(display_worker, "process.start", {"run_id": "14", "argv": [*TK_WINDOW[:1], "-c", "print('fine')"]})
    [ended] = ended_runs(display_worker)
    assert ended["exit_code"] == 0
    assert refused(display_worker, "run.evidence", {"run_id": "14"})["code"] == "not_found"
    assert refused(display_worker, "run.evidence", {"run_id": "../14"})["code"] == "not_found"

    evidence = display_worker.evidence
    for number in range(MAX_BUNDLES + 5):
        folder = evidence.bundles_dir / str(1000 + number)
        folder.mkdir()
        (folder / "bundle.json").write_text("{}")
        os.utime(folder, (time.time() - 60 + number, time.time() - 60 + number))
    old = evidence.bundles_dir / "999"
    old.mkdir()
    os.utime(old, (time.time() - 25 * 3600, time.time() - 25 * 3600))
    assert evidence.prune() == 6
    kept = sorted(int(folder.name) for folder in evidence.bundles_dir.iterdir())
    assert len(kept) == MAX_BUNDLES and kept[0] == 1005  # the newest 50, none older than a day


def test_killing_a_run_whose_display_hangs_returns_soon_and_the_screenshot_is_a_jpeg_at_most_1920_wide(
    display_worker: Worker, tmp_path: Path
) -> None:
    session = spec("wide", width=2560, height=600)
    start_tk(display_worker, "15", session, tmp_path / "events.jsonl")
    xvfb = display_worker.displays.status("wide")["pid"]
    os.kill(xvfb, signal.SIGSTOP)  # connected to, it never answers: a hung X server
    try:
        began = time.monotonic()
        call(display_worker, "process.signal", {"run_id": "15", "action": "kill"})
        took = time.monotonic() - began
    finally:
        os.kill(xvfb, signal.SIGCONT)
    assert took < 3.5, took  # the screenshot before the kill is given up after a second
    healthy(display_worker, session)  # thawed: the bundle made at the run's end has its screen
    ended_runs(display_worker, 20)
    bundle = call(display_worker, "run.evidence", {"run_id": "15"})
    assert bundle["screenshot"]["content_type"] == "image/jpeg"
    picture = Image.open(io.BytesIO(base64.b64decode(bundle["screenshot"]["data"])))
    assert picture.format == "JPEG" and picture.size == (1920, 450)
