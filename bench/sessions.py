"""Screens of graphical sessions through a real `robofleet serve` (SQLite, its embedded local agent), against the
same grabs made in-process, side by side on the same display in the same run.

- Round trip: GET /api/v1/sessions/{name}/screenshot of a 1280x800 Xvfb session whose screen changes every 40 ms
  (bench/_moving_screen.py runs in it as a robot), PNG and JPEG, one request after the other: from the call to the
  last byte of the image. Peers, on the same display: pyOpenRPA's way (PIL.ImageGrab of the display, then
  encoded; no HTTP) and the floor (mss grab + Pillow encode in this process: what no server can beat).
- Full view: frames/s for 10 s as the panel's full view asks them (the next frame when the last arrived, with
  If-None-Match: an unchanged frame would be a 304 and not count).
- Thumbnails: 20 sessions, each thumbnail (JPEG, max_width 320) fetched every 2 s for 30 s; the CPU % (of one
  core) of `serve` with its embedded agent, and of all the Xvfb servers.
Targets on 2 cores: p50 < 100 ms for a 1280x800 JPEG, >= 5 frames/s for one full view.
Usage: python bench/sessions.py [--rounds 100] [--thumbnails 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import print_table, screenshot_round_trips, screenshot_rows, serve

MOVING = [sys.executable, str(Path(__file__).resolve().parent / "_moving_screen.py")]
WIDTH, HEIGHT = 1280, 800
QUALITY = 80


def wait_healthy(api: httpx.Client, name: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        session: dict[str, Any] = api.get(f"/api/v1/sessions/{name}").json()
        if session.get("state") == "healthy":
            return session
        if time.monotonic() > deadline:
            raise RuntimeError(f"session {name} not healthy: {session}")
        time.sleep(0.2)


def make_session(api: httpx.Client, name: str) -> dict[str, Any]:
    made = api.post(
        "/api/v1/sessions",
        json={"name": name, "agent": "local", "kind": "xvfb", "width": WIDTH, "height": HEIGHT},
    )
    assert made.status_code == 201, made.text
    return wait_healthy(api, name)


def in_process(display: str, fmt: str, rounds: int, grab: str) -> list[float]:
    """The peers: the same display grabbed and encoded here, by mss (the floor) or PIL.ImageGrab (pyOpenRPA)."""
    import mss
    from PIL import Image, ImageGrab

    took = []
    with mss.MSS(display=display) as screens:
        for _ in range(rounds):
            began = time.perf_counter()
            if grab == "mss":
                shot = screens.grab(screens.monitors[1])
                image = Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")
            else:
                image = ImageGrab.grab(xdisplay=display)
            out = io.BytesIO()
            image.convert("RGB").save(out, format=fmt.upper(), **({"quality": QUALITY} if fmt == "jpeg" else {}))
            took.append((time.perf_counter() - began) * 1000)
    return took


def full_view(api: httpx.Client, name: str, seconds: float) -> float:
    """Frames/s as the full view fetches them: the next when the last arrived, skipping unchanged ones."""
    etag, frames = None, 0
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    while time.perf_counter() < deadline:
        headers: dict[str, str] = {"If-None-Match": etag} if etag else {}
        answer = api.get(f"/api/v1/sessions/{name}/screenshot", params={"format": "jpeg"}, headers=headers)
        if answer.status_code == 200:
            frames += 1
            etag = answer.headers.get("etag")
    return frames / (time.perf_counter() - began)


def xvfb_cpu_seconds() -> float:
    total = 0.0
    for process in psutil.process_iter(["name"]):
        if process.info["name"] == "Xvfb":
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
    return total


def thumbnails(server: Any, names: list[str], seconds: float) -> tuple[float, float, int]:
    """(serve CPU %, Xvfb CPU %, thumbnails fetched) with every session's thumbnail fetched every 2 s."""
    serve_process = psutil.Process(server.process.pid)
    fetched = [0]
    stop = threading.Event()

    def viewer(name: str, offset: float) -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as api:
            etag = None
            stop.wait(offset)
            while not stop.is_set():
                headers: dict[str, str] = {"If-None-Match": etag} if etag else {}
                answer = api.get(
                    f"/api/v1/sessions/{name}/screenshot",
                    params={"format": "jpeg", "max_width": 320},
                    headers=headers,
                )
                if answer.status_code == 200:
                    etag = answer.headers.get("etag")
                fetched[0] += 1
                stop.wait(2.0)

    threads = [
        threading.Thread(target=viewer, args=(name, 2.0 * index / len(names)), daemon=True)
        for index, name in enumerate(names)
    ]
    before = serve_process.cpu_times()
    xvfb_before = xvfb_cpu_seconds()
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(10)
    elapsed = time.perf_counter() - began
    after = serve_process.cpu_times()
    used = (after.user + after.system) - (before.user + before.system)
    return 100 * used / elapsed, 100 * (xvfb_cpu_seconds() - xvfb_before) / elapsed, fetched[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--thumbnails", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    with serve("sqlite") as server:
        api = httpx.Client(base_url=server.url, headers=server.headers, timeout=30)
        session = make_session(api, "bench-view")
        robot = {"name": "bench-moving", "argv": MOVING, "session": "bench-view"}
        assert api.post("/api/v1/robots", json=robot).status_code == 201
        assert api.post("/api/v1/robots/bench-moving/start").status_code == 201
        time.sleep(2)  # the window is drawn
        display = str(session["actual_display"])
        # The display takes its cookie only (agents/xauth.py): the in-process peers read it from the agent's file.
        os.environ["XAUTHORITY"] = str(server.workdir / "robofleet-data" / "agent-local" / "sessions" / "Xauthority")
        figures: dict[str, dict[str, list[float]]] = {}
        sizes: dict[str, int] = {}
        for fmt in ("jpeg", "png"):
            api_took, sizes[fmt] = screenshot_round_trips(api, "bench-view", fmt, args.rounds, QUALITY)
            figures[fmt] = {
                "robofleet (HTTP, agent grabs)": api_took,
                "PIL.ImageGrab in-process (pyOpenRPA's way)": in_process(display, fmt, args.rounds, "pil"),
                "mss + Pillow in-process (the floor)": in_process(display, fmt, args.rounds, "mss"),
            }
        fps = full_view(api, "bench-view", 10)
        names = [f"bench-thumb-{index:02d}" for index in range(args.thumbnails)]
        for name in names:
            assert api.post(
                "/api/v1/sessions",
                json={"name": name, "agent": "local", "kind": "xvfb", "width": WIDTH, "height": HEIGHT},
            ).is_success
        for name in names:
            wait_healthy(api, name)
        serve_cpu, xvfb_cpu, fetched = thumbnails(server, names, args.seconds)
        ours = "robofleet (HTTP, agent grabs)"
        rows = screenshot_rows(figures, sizes, ours, 0.99)
    print_table(
        f"Screenshots of a {WIDTH}x{HEIGHT} Xvfb session whose screen changes every 40 ms, {args.rounds} in a row "
        f"per format (JPEG quality {QUALITY}); robofleet: GET /api/v1/sessions/NAME/screenshot on serve's "
        "embedded agent. Target: JPEG p50 < 100 ms",
        ["format", "system", "p50 ms", "p99 ms", "KB", "robofleet p50 / this p50"],
        rows,
    )
    print_table(
        f"Live views. Target: >= 5 frames/s for one full view; {args.thumbnails} thumbnails refreshed every 2 s",
        ["measure", "value"],
        [
            ["full view frames/s (JPEG 1280x800, next frame when the last arrived)", f"{fps:.1f}"],
            [f"{args.thumbnails} thumbnails every 2 s: serve + embedded agent CPU %", f"{serve_cpu:.1f}"],
            [f"{args.thumbnails} thumbnails every 2 s: all Xvfb CPU %", f"{xvfb_cpu:.1f}"],
            ["thumbnails fetched", f"{fetched:,}"],
        ],
    )


if __name__ == "__main__":
    main()
