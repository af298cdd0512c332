"""The Sessions pages in headless Chromium on one real `robofleet serve` whose local agent runs a real Xvfb session
with the Tk demo robot (examples/robots/tk_window.py) on it: the grid shows a live thumbnail of its screen (an
image that loaded, in the robot's colour) and follows its state; the full view refreshes several times a second;
with Control on, a click on the image reaches the robot at about the same place on its screen, and typed text too;
with Control off nothing is sent; a viewer sees the screen but no control; the pages work at 390 px."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ServeProcess, StartServe, signed_in, wait_until
from tests.sessions.conftest import BLUE, TK_WINDOW

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SESSION = "desk"
WIDTH, HEIGHT = 1024, 640


@dataclass
class Desk:
    serve: ServeProcess
    api: httpx.Client
    events: Path  # the Tk robot's record of the clicks and keys it received

    def received(self) -> list[dict[str, Any]]:
        if not self.events.exists():
            return []
        return [json.loads(line) for line in self.events.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def desk(start_module_serve: StartServe, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    """A server with the session `desk` on its local agent, healthy, and the Tk robot running on it."""
    folder = tmp_path_factory.mktemp("sessions-panel")
    serve = start_module_serve(folder)
    serve.user("vera", "viewer")
    events = folder / "tk-events.jsonl"
    with serve.api(timeout=30) as api:
        made = api.post(
            "/api/v1/sessions",
            json={"name": SESSION, "agent": "local", "kind": "xvfb", "width": WIDTH, "height": HEIGHT},
        )
        assert made.status_code == 201, made.text
        wait_until(
            lambda: api.get(f"/api/v1/sessions/{SESSION}").json()["state"] == "healthy",
            30,
            message=lambda: f"session {SESSION} to be healthy: {api.get(f'/api/v1/sessions/{SESSION}').text}",
        )
        robot = {
            "name": "tk",
            "agent": "local",
            "argv": [sys.executable, str(TK_WINDOW)],
            "env": {"TK_WINDOW_EVENTS": str(events)},
            "session": SESSION,
        }
        assert api.post("/api/v1/robots", json=robot).status_code == 201
        assert api.post("/api/v1/robots/tk/start").status_code == 201
        wait_until(lambda: blue_in_the_middle(api), 30, message="the Tk window on the session's screen")
        yield Desk(serve, api, events)
        api.post("/api/v1/robots/tk/kill")


def blue_in_the_middle(api: httpx.Client) -> bool:
    from io import BytesIO

    from PIL import Image

    shot = api.get(f"/api/v1/sessions/{SESSION}/screenshot", params={"format": "png"})
    if shot.status_code != 200:
        return False
    image = Image.open(BytesIO(shot.content)).convert("RGB")
    return image.getpixel((image.width // 2, image.height // 2)) == BLUE


@pytest.fixture
def admin(desk: Desk, module_browser: Browser) -> Iterator[Page]:
    with signed_in(
        module_browser, desk.serve.url, "admin", desk.serve.admin_password(), "/panel/sessions", accept_dialogs=True
    ) as page:
        yield page


def image_colour(page: Page, selector: str) -> list[int]:
    """The colour in the middle of the image as the browser decoded it (a canvas reads it back)."""
    colour = page.eval_on_selector(
        selector,
        """img => {
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const context = canvas.getContext("2d");
            context.drawImage(img, 0, 0);
            const middle = context.getImageData(img.naturalWidth >> 1, img.naturalHeight >> 1, 1, 1);
            return Array.from(middle.data.slice(0, 3));
        }""",
    )
    return [int(value) for value in colour]


def near(colour: list[int], expected: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(got - want) <= tolerance for got, want in zip(colour, expected, strict=True))  # JPEG's rounding


def test_the_grid_shows_a_live_thumbnail_and_g_d_goes_there(desk: Desk, admin: Page) -> None:
    page = admin
    page.goto(f"{desk.serve.url}/panel/fleet")
    page.keyboard.press("g")
    page.keyboard.press("d")
    page.wait_for_url("**/panel/sessions")
    card = page.locator(f"#session-{SESSION}")
    expect(card.locator("[data-field=state]")).to_have_text("healthy")
    expect(card).to_contain_text(f"{WIDTH}\N{MULTIPLICATION SIGN}{HEIGHT}")
    expect(page.locator("#live-state")).to_have_text("live", timeout=10_000)
    thumb = card.locator("img.thumb")
    expect(thumb).to_be_visible(timeout=10_000)
    assert page.eval_on_selector(f"#session-{SESSION} img.thumb", "img => img.complete && img.naturalWidth") == 320
    assert near(image_colour(page, f"#session-{SESSION} img.thumb"), BLUE)

    # Refreshed with the frame's ETag (an unchanged screen answers 304; the robot's blinking cursor changes it).
    with page.expect_request(
        lambda request: "/screenshot" in request.url and "if-none-match" in request.headers, timeout=10_000
    ):
        pass
    expect(thumb).to_be_visible()

    # Filters: by state, kept in the address.
    page.select_option("#filter-state", "failed")
    expect(card).to_be_hidden()
    expect(page.locator("#no-match")).to_be_visible()
    assert "state=failed" in page.url
    page.select_option("#filter-state", "")
    expect(card).to_be_visible()


def test_a_click_in_the_full_view_reaches_the_robot(desk: Desk, admin: Page) -> None:
    page = admin
    page.click(f"#session-{SESSION} a.session-link")
    page.wait_for_url(f"**/panel/sessions/{SESSION}")
    screen = page.locator("#screen")
    expect(screen).to_be_visible(timeout=10_000)
    # Several frames a second while open (the robot's window does not change: 304s count, they are checks).
    expect(page.locator("#frame-rate")).to_contain_text("frames/s", timeout=10_000)
    page.wait_for_timeout(3500)  # the rate is counted over the last 3 s
    rate = float(page.inner_text("#frame-rate").split()[0])
    assert rate >= 3, page.inner_text("#frame-rate")

    # Control off: a click sends nothing.
    before = len(desk.received())
    box = screen.bounding_box()
    assert box is not None
    screen.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.5})
    expect(page.locator("#action-status")).to_contain_text("Control is off")
    expect(page.locator("#type-send")).to_be_disabled()

    # Control on: the click lands at the same place of the robot's screen.
    page.click("#control-toggle")
    expect(page.locator("#control-toggle")).to_have_attribute("aria-pressed", "true")
    x, y = box["width"] * 0.25, box["height"] * 0.5
    screen.click(position={"x": x, "y": y})
    expect(page.locator("#action-status")).to_contain_text("Clicked at", timeout=10_000)
    wait_until(lambda: len(desk.received()) > before, 10, message=lambda: f"the click at the robot: {desk.received()}")
    click = [event for event in desk.received()[before:] if "button" in event][-1]
    assert click["button"] == "left"
    assert abs(click["x"] - WIDTH * 0.25) <= 8 and abs(click["y"] - HEIGHT * 0.5) <= 8, click

    # A double click is sent once, as one (two presses at the robot, not three or four).
    lefts = sum(1 for event in desk.received() if event.get("button") == "left")
    screen.dblclick(position={"x": x, "y": y})
    expect(page.locator("#action-status")).to_contain_text("Double-clicked at", timeout=10_000)
    wait_until(lambda: sum(1 for event in desk.received() if event.get("button") == "left") >= lefts + 2, 10)
    page.wait_for_timeout(500)
    assert sum(1 for event in desk.received() if event.get("button") == "left") == lefts + 2

    # A right click too (the browser's menu does not open).
    with page.expect_response(lambda r: r.url.endswith("/click"), timeout=15_000) as got:
        screen.click(position={"x": x, "y": y}, button="right")
    assert got.value.status == 200, got.value.text()
    expect(page.locator("#action-status")).to_contain_text("Right-clicked at", timeout=10_000)
    wait_until(
        lambda: any(event.get("button") == "right" for event in desk.received()),
        10,
        message=lambda: f"the right click at the robot: {desk.received()}",
    )


def test_text_typed_in_the_panel_reaches_the_robot(desk: Desk, admin: Page) -> None:
    page = admin
    page.goto(f"{desk.serve.url}/panel/sessions/{SESSION}")
    expect(page.locator("#screen")).to_be_visible(timeout=10_000)
    page.keyboard.press("c")  # Control on, from the keyboard
    expect(page.locator("#control-toggle")).to_have_attribute("aria-pressed", "true")
    # The robot's entry sits at the top of its window: click into it, then type there.
    box = page.locator("#screen").bounding_box()
    assert box is not None
    page.locator("#screen").click(position={"x": box["width"] / 2, "y": box["height"] * 0.08})
    expect(page.locator("#action-status")).to_contain_text("Clicked at", timeout=10_000)
    page.fill("#type-text", "hello robot")
    page.click("#type-send")
    expect(page.locator("#action-status")).to_contain_text("Typed 11 character(s)", timeout=10_000)
    wait_until(
        lambda: any(event.get("text") == "hello robot" for event in desk.received()),
        10,
        message=lambda: f"the text at the robot: {desk.received()}",
    )

    # Keys pressed while the screen has the focus go to the robot: characters typed, others pressed by name.
    page.focus("#screen")
    page.keyboard.type("xy")
    page.keyboard.press("Backspace")
    wait_until(
        lambda: any(
            event.get("text") == "hello robotx" and event.get("key") == "BackSpace" for event in desk.received()
        ),
        10,
        message=lambda: f"the keys at the robot: {desk.received()}",
    )
    assert page.url.endswith(f"/panel/sessions/{SESSION}")  # "g", "/" and the like went to the robot, not the panel


def test_no_session_yet_says_how_to_make_one(start_serve: StartServe, module_browser: Browser) -> None:
    serve = start_serve()
    with signed_in(module_browser, serve.url, "admin", serve.admin_password(), "/panel/sessions") as page:
        empty = page.locator("#no-sessions")
        expect(empty).to_contain_text("[[sessions]]")
        expect(empty).to_contain_text("/api/v1/sessions")
        assert page.locator(".session-card").count() == 0


def test_a_viewer_sees_the_screen_but_no_control(desk: Desk, module_browser: Browser) -> None:
    password = "vera-password"
    with signed_in(module_browser, desk.serve.url, "vera", password, f"/panel/sessions/{SESSION}") as page:
        expect(page.locator("#screen")).to_be_visible(timeout=10_000)
        for control in ("#control-toggle", "#control-panel", "#type-form", "#restart"):
            assert page.locator(control).count() == 0, control
        before = len(desk.received())
        page.locator("#screen").click()
        page.wait_for_timeout(500)
        assert len(desk.received()) == before


def test_the_pages_work_at_390_px(desk: Desk, module_browser: Browser) -> None:
    context = module_browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        from tests.conftest import log_in

        log_in(page, desk.serve.url, "admin", desk.serve.admin_password(), "/panel/sessions")
        for path in ("/panel/sessions", f"/panel/sessions/{SESSION}"):
            page.goto(desk.serve.url + path)
            expect(page.locator("main img:not([hidden])").first).to_be_visible(timeout=10_000)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, (path, overflow)
        width = page.eval_on_selector("#screen", "img => img.getBoundingClientRect().width")
        assert 300 <= width <= 390
    finally:
        context.close()


def test_a_failed_runs_page_shows_its_evidence_as_it_arrives(desk: Desk, admin: Page) -> None:
    page = admin
    robot = {
        "name": "tk-fails",
        "agent": "local",
        "argv": [sys.executable, str(TK_WINDOW), "--fail-after", "4"],
        "env": {"TK_WINDOW_EVENTS": str(desk.events.with_name("tk-fails.jsonl"))},
        "session": SESSION,
    }
    assert desk.api.post("/api/v1/robots", json=robot).status_code == 201
    started = desk.api.post("/api/v1/robots/tk-fails/start")
    assert started.status_code == 201, started.text
    run = started.json()["id"]
    # Opened while it runs: the evidence shows once the agent sent it, without a reload.
    page.goto(f"{desk.serve.url}/panel/runs/{run}")
    expect(page.locator("#run-evidence")).to_be_hidden()
    expect(page.locator("#run-state")).to_have_text("failed", timeout=30_000)
    expect(page.locator("#evidence-screenshot img")).to_be_visible(timeout=30_000)
    loaded = page.eval_on_selector("#evidence-screenshot img", "img => img.complete && img.naturalWidth")
    assert loaded == WIDTH
    assert near(image_colour(page, "#evidence-screenshot img"), BLUE)
    expect(page.locator("#evidence-output")).to_contain_text("the robot gave up on purpose")
    commands = page.locator("#evidence-processes td.cmd").all_inner_texts()
    assert any("tk_window.py" in command for command in commands), commands
