"""Sessions for real: a `robofleet serve` whose local agent keeps an Xvfb session, a Tk robot
(examples/robots/tk_window.py) drawing its #3366cc window in it; the screen through the API as PNG, JPEG and WebP
with its ETag, a click through the API reaching the robot, control refused without sessions:control, the
watchdog's restart in the session's history, a failed run's evidence with its screenshot, the CLI.

One server for the module (its tests run in order: the last one kills the display)."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import ServeProcess, StartServe, wait_until
from tests.sessions.conftest import TK_WINDOW, blue_share, session_state

pytestmark = pytest.mark.slow
WIDTH, HEIGHT = 800, 600


@dataclass
class Desk:
    serve: ServeProcess
    api: httpx.Client
    events_file: Path
    run_id: int


def run_in(api: httpx.Client, run_id: int, *states: str) -> dict[str, Any] | None:
    run: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
    return run if run["state"] in states else None


@pytest.fixture(scope="module")
def desk(start_module_serve: StartServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """A serve with the session "desk" (800x600) healthy on its local agent and the robot "painter" running in it."""
    if not TK_WINDOW.exists():
        pytest.fail(f"{TK_WINDOW} is missing (the demo robot of issue 16)")
    serve = start_module_serve(
        env={"ROBOFLEET_SESSIONS__CHECK_SECONDS": "0.5", "ROBOFLEET_SESSIONS__SESSION_WAIT_SECONDS": "3"}
    )
    events_file = tmp_path_factory.mktemp("painter") / "events.jsonl"
    with serve.api() as api:
        made = api.post("/api/v1/sessions", json={"name": "desk", "width": WIDTH, "height": HEIGHT})
        assert made.status_code == 201, made.text
        wait_until(lambda: session_state(api, "desk", "healthy"), 20, message=lambda: serve.output()[-3000:])
        robot = {
            "name": "painter",
            "argv": [sys.executable, str(TK_WINDOW)],
            "env": {"TK_WINDOW_EVENTS": str(events_file)},
            "session": "desk",
        }
        assert api.post("/api/v1/robots", json=robot).status_code == 201
        started = api.post("/api/v1/robots/painter/start")
        assert started.status_code == 201, started.text

        def drawn() -> bool:
            shot = api.get("/api/v1/sessions/desk/screenshot")
            return shot.status_code == 200 and blue_share(Image.open(io.BytesIO(shot.content))) > 0.5

        wait_until(drawn, 20, interval=0.5, message=lambda: serve.output()[-3000:])
        yield Desk(serve, api, events_file, started.json()["id"])


def test_the_screen_comes_as_png_jpeg_and_webp_showing_the_robots_window(desk: Desk) -> None:
    api = desk.api
    png = api.get("/api/v1/sessions/desk/screenshot")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (WIDTH, HEIGHT) and blue_share(image) > 0.5
    assert png.headers["X-Screen-Width"] == str(WIDTH)

    jpeg = api.get("/api/v1/sessions/desk/screenshot", params={"format": "jpeg", "quality": 70, "max_width": 320})
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    thumbnail = Image.open(io.BytesIO(jpeg.content))
    assert thumbnail.format == "JPEG" and thumbnail.size[0] == 320 and blue_share(thumbnail, 24) > 0.5

    webp = api.get("/api/v1/sessions/desk/screenshot", params={"scale": 0.5}, headers={"Accept": "image/webp"})
    assert webp.headers["content-type"] == "image/webp"
    assert Image.open(io.BytesIO(webp.content)).size == (WIDTH // 2, HEIGHT // 2)

    def unchanged() -> bool:
        first = api.get("/api/v1/sessions/desk/screenshot", params={"format": "jpeg"})
        again = api.get(
            "/api/v1/sessions/desk/screenshot",
            params={"format": "jpeg"},
            headers={"If-None-Match": first.headers["ETag"]},
        )
        return again.status_code == 304 and again.content == b"" and again.headers["ETag"] == first.headers["ETag"]

    wait_until(unchanged, 10, interval=0.3)
    other = api.get("/api/v1/sessions/desk/screenshot", headers={"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200 and other.content.startswith(b"\x89PNG")


def test_a_click_through_the_api_reaches_the_robot(desk: Desk) -> None:
    answer = desk.api.post("/api/v1/sessions/desk/click", json={"x": 400, "y": 300})
    assert answer.status_code == 200 and answer.json() == {"done": True}, answer.text

    def clicked() -> list[dict[str, Any]]:
        lines = desk.events_file.read_text().splitlines() if desk.events_file.exists() else []
        return [event for event in map(json.loads, lines) if "button" in event]

    clicks = wait_until(clicked, 10)
    assert clicks[-1]["button"] == "left" and abs(clicks[-1]["x"] - 400) <= 2 and abs(clicks[-1]["y"] - 300) <= 2
    right = desk.api.post("/api/v1/sessions/desk/click", json={"x": 200, "y": 150, "button": "right"})
    assert right.status_code == 200
    wait_until(lambda: any(event["button"] == "right" for event in clicked()), 10)

    outside = desk.api.post("/api/v1/sessions/desk/click", json={"x": WIDTH, "y": 10})
    assert outside.status_code == 422 and "outside the screen" in outside.text
    assert desk.api.post("/api/v1/sessions/desk/key", json={"keys": "Escape"}).status_code == 200
    audit = desk.api.get("/api/v1/audit", params={"target": "desk", "action": "session.click"}).json()["items"]
    assert {record["outcome"] for record in audit} == {"ok", "failed"}


def test_control_needs_sessions_control_and_a_viewer_only_sees(desk: Desk) -> None:
    desk.serve.user("vera", "viewer")
    with desk.serve.api(desk.serve.token("vera")) as viewer:
        assert viewer.get("/api/v1/sessions/desk/screenshot").status_code == 200
        refused = viewer.post("/api/v1/sessions/desk/click", json={"x": 10, "y": 10})
        assert refused.status_code == 403 and refused.json()["error"]["details"]["permission"] == "sessions:control"
        assert viewer.post("/api/v1/sessions/desk/type", json={"text": "hello"}).status_code == 403
        assert viewer.post("/api/v1/sessions/desk/restart").status_code == 403
    made = desk.api.post("/api/v1/tokens", json={"user": "admin", "scopes": ["sessions:read"]})
    assert made.status_code == 201, made.text
    with desk.serve.api(made.json()["token"]) as looker:
        assert looker.get("/api/v1/sessions/desk").status_code == 200
        assert looker.post("/api/v1/sessions/desk/click", json={"x": 10, "y": 10}).status_code == 403
    assert desk.api.get("/api/v1/sessions/nope/screenshot").status_code == 404


def test_a_long_text_is_waited_for_as_long_as_the_agent_types_it(desk: Desk) -> None:
    # 6,000 characters take the agent some 20 s: longer than the server's plain 15 s for an input.
    answer = desk.api.post("/api/v1/sessions/desk/type", json={"text": "a" * 6000}, timeout=120)
    assert answer.status_code == 200 and answer.json() == {"done": True}, answer.text


def test_clicks_are_checked_against_the_screen_the_agent_found(desk: Desk) -> None:
    # An attached display bigger than the width and height the session says: its own size counts.
    display = desk.api.get("/api/v1/sessions/desk").json()["actual_display"]
    made = desk.api.post(
        "/api/v1/sessions",
        json={"name": "onto-desk", "kind": "attach", "display": display, "width": 320, "height": 200},
    )
    assert made.status_code == 201, made.text
    found = wait_until(lambda: session_state(desk.api, "onto-desk", "healthy"), 20)
    assert (found["screen_width"], found["screen_height"]) == (WIDTH, HEIGHT), found
    inside = desk.api.post("/api/v1/sessions/onto-desk/click", json={"x": WIDTH - 10, "y": HEIGHT - 10})
    assert inside.status_code == 200, inside.text
    outside = desk.api.post("/api/v1/sessions/onto-desk/click", json={"x": WIDTH, "y": 10})
    assert outside.status_code == 422 and f"({WIDTH}x{HEIGHT})" in outside.text
    assert desk.api.delete("/api/v1/sessions/onto-desk").status_code == 204


def test_a_session_that_is_not_healthy_gives_no_screen(desk: Desk) -> None:
    made = desk.api.post("/api/v1/sessions", json={"name": "spare", "enabled": False})
    assert made.status_code == 201 and made.json()["state"] == "stopped"
    refused = desk.api.get("/api/v1/sessions/spare/screenshot")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_unhealthy"
    assert desk.api.post("/api/v1/sessions/spare/click", json={"x": 1, "y": 1}).status_code == 409
    assert desk.api.delete("/api/v1/sessions/spare").status_code == 204


def test_a_run_waits_for_its_session_and_fails_when_it_is_not_healthy(desk: Desk) -> None:
    # Nothing listens on :77 of this machine: the attached display stays unhealthy.
    made = desk.api.post("/api/v1/sessions", json={"name": "absent", "kind": "attach", "display": ":77"})
    assert made.status_code == 201, made.text
    robot = {"name": "blind", "argv": [sys.executable, str(TK_WINDOW)], "session": "absent"}
    assert desk.api.post("/api/v1/robots", json=robot).status_code == 201
    refused = desk.api.post("/api/v1/robots/blind/start")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "session_unhealthy", refused.text
    assert "session absent is not healthy" in refused.json()["error"]["message"]
    run = desk.api.get("/api/v1/runs", params={"robot": "blind"}).json()["items"][0]
    assert run["state"] == "failed" and "session absent is not healthy" in run["error"]
    wait_until(
        lambda: session_state(desk.api, "absent", "unhealthy") or session_state(desk.api, "absent", "failed"), 10
    )
    assert desk.api.delete("/api/v1/robots/blind").status_code == 204
    assert desk.api.delete("/api/v1/sessions/absent").status_code == 204


def test_a_kill_while_the_run_waits_for_its_session_ends_it_once_started(desk: Desk) -> None:
    """A run is `starting` while its agent waits for its session; a kill then is kept and sent once it runs (the
    agent did not know the run yet: the kill was refused and the robot ran on)."""
    made = desk.api.post("/api/v1/sessions", json={"name": "late", "width": 640, "height": 480})
    assert made.status_code == 201, made.text
    robot = {"name": "sleeper", "argv": [sys.executable, "-c", "import time; time.sleep(120)"], "session": "late"}
    assert desk.api.post("/api/v1/robots", json=robot).status_code == 201
    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(desk.api.post, "/api/v1/robots/sleeper/start")
        run = wait_until(
            lambda: next(iter(desk.api.get("/api/v1/runs", params={"robot": "sleeper"}).json()["items"]), None),
            10,
            interval=0.01,
        )
        assert run["state"] == "starting", run
        killed = desk.api.post(f"/api/v1/runs/{run['id']}/kill")
        assert killed.status_code == 200, killed.text
        assert starting.result().status_code == 201
    ended = wait_until(lambda: run_in(desk.api, run["id"], "killed", "succeeded", "failed"), 15)
    assert ended["state"] == "killed", ended
    assert desk.api.delete("/api/v1/robots/sleeper").status_code == 204
    assert desk.api.delete("/api/v1/sessions/late").status_code == 204


def test_the_stream_says_each_change(desk: Desk) -> None:
    with desk.api.stream("GET", "/api/v1/sessions-stream", timeout=20) as stream:
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        assert desk.api.post("/api/v1/sessions", json={"name": "streamed", "enabled": False}).status_code == 201
        for line in lines:
            if line.startswith("data:") and '"streamed"' in line:
                assert json.loads(line[5:])["state"] == "stopped"
                break
    assert desk.api.delete("/api/v1/sessions/streamed").status_code == 204


def test_the_cli_lists_sessions_and_saves_a_screenshot(desk: Desk, tmp_path: Path) -> None:
    token = desk.serve.token()
    listed = desk.serve.cli("session", "list", "--token", token)
    assert listed.returncode == 0, listed.stderr
    assert "desk" in listed.stdout and "healthy" in listed.stdout
    target = tmp_path / "desk.png"
    saved = desk.serve.cli("session", "screenshot", "desk", "-o", str(target), "--token", token)
    assert saved.returncode == 0, saved.stderr
    assert blue_share(Image.open(target)) > 0.5
    missing = desk.serve.cli("session", "screenshot", "nope", "-o", str(target), "--token", token)
    assert missing.returncode != 0 and "no session named 'nope'" in missing.stderr


def test_a_failed_run_keeps_its_evidence(desk: Desk) -> None:
    robot = {
        "name": "crasher",
        "argv": [sys.executable, str(TK_WINDOW), "--fail-after", "2"],
        "env": {"TK_WINDOW_EVENTS": str(desk.events_file.with_name("crasher.jsonl"))},
        "session": "desk",
    }
    assert desk.api.post("/api/v1/robots", json=robot).status_code == 201
    started = desk.api.post("/api/v1/robots/crasher/start")
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    wait_until(lambda: run_in(desk.api, run_id, "failed"), 20)

    def kept() -> httpx.Response | None:
        found = desk.api.get(f"/api/v1/runs/{run_id}/evidence")
        return found if found.status_code == 200 else None

    evidence = wait_until(kept, 20, interval=0.3, message=lambda: desk.serve.output()[-3000:]).json()
    assert evidence["run_id"] == run_id and evidence["robot"] == "crasher" and evidence["agent"] == "local"
    assert evidence["exit"] and evidence["output"], evidence
    assert evidence["screenshot_url"] == f"/api/v1/runs/{run_id}/evidence/screenshot"
    shot = desk.api.get(evidence["screenshot_url"])
    assert shot.status_code == 200 and shot.headers["content-type"].startswith("image/")
    assert Image.open(io.BytesIO(shot.content)).size[0] > 0
    desk.serve.user("viv", "viewer")
    with desk.serve.api(desk.serve.token("viv")) as viewer:
        assert viewer.get(f"/api/v1/runs/{run_id}/evidence").status_code == 200


def test_the_watchdog_restarts_a_killed_display_and_the_run_hears_of_it(desk: Desk) -> None:
    session = desk.api.get("/api/v1/sessions/desk").json()
    assert session["pid"], session
    os.kill(session["pid"], signal.SIGKILL)

    def restarted() -> dict[str, Any] | None:
        now: dict[str, Any] = desk.api.get("/api/v1/sessions/desk").json()
        return now if now["state"] == "healthy" and now["restarts"] >= 1 and now["pid"] != session["pid"] else None

    wait_until(restarted, 30, interval=0.3, message=lambda: desk.serve.output()[-3000:])
    events = desk.api.get("/api/v1/sessions/desk/events").json()["items"]
    assert any(event["state"] != "healthy" and event["source"] == "agent:local" for event in events), events
    assert events[0]["state"] == "healthy"

    def warned() -> bool:
        logs = desk.api.get("/api/v1/logs", params={"run_id": str(desk.run_id), "q": "unhealthy"}).json()["items"]
        return any("session desk is unhealthy under this run" in record["message"] for record in logs)

    wait_until(warned, 15, interval=0.5, message=lambda: desk.serve.output()[-3000:])
    restarted_by_hand = desk.api.post("/api/v1/sessions/desk/restart")
    assert restarted_by_hand.status_code == 200, restarted_by_hand.text
    assert restarted_by_hand.json()["restarts"] >= 2
