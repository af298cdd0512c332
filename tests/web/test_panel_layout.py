"""The panel at every width and in the dark, in headless Chromium against a real `robofleet serve`: at 1366 px and at
390 px no page scrolls sideways (a wide table scrolls in its own box), the sidebar folds into a Menu button worked by
keyboard, a skip link leads to the main content, every focused control shows its focus, live regions are polite;
`prefers-color-scheme: dark` gives a dark panel, and every state badge, log level and chart colour keeps its
contrast in both schemes. And a narrow user's navigation on both stores."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize

from robofleet.activities.models import ActivityState
from robofleet.logs.models import LEVELS
from robofleet.queues.states import ItemState
from robofleet.robots.states import RunState
from robofleet.web.templating import NAVIGATION
from tests.conftest import ServeProcess, StartServe, log_in, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROBOT = "invoice-robot"
DESKTOP: ViewportSize = {"width": 1366, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Every page of the navigation (the admin sees them all), and pages behind them with wide tables or charts.
PAGES = [
    *(entry.href for entry in NAVIGATION),
    f"/panel/robots/{ROBOT}",
    "/panel/queues/invoices",
    "/panel/schedules/timeline",
    "/panel/access/roles",
    "/panel/access/audit",
]
SETTINGS = f"""
[[robots]]
name = "{ROBOT}"
argv = ["{sys.executable}", "-c", "print('invoice 4711 booked; ' * 12)"]
tags = ["finance", "nightly-batch-with-a-long-tag"]
description = "Books the invoices of the day"

[[queues]]
name = "invoices"
sla_minutes = 30

[[schedules]]
name = "invoices-every-morning-on-weekdays"
target = {{ action = "robots.start", args = {{ name = "{ROBOT}" }} }}
trigger = {{ kind = "cron", expression = "0 30 7 * * mon-fri" }}

[[roles]]
name = "invoice-runner"
permissions = ["robots:read", "robots:start", "logs:read"]
robot_globs = ["invoice-*"]
"""

# What sticks out of the viewport: elements past its right edge that no scrolling box of their own holds.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const scrolls = (el) => {
    for (let at = el.parentElement; at && at !== document.body; at = at.parentElement) {
      const style = getComputedStyle(at);
      if (["auto", "scroll", "hidden"].includes(style.overflowX) && at.scrollWidth > at.clientWidth - 1) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1 && !scrolls(el)) {
      const classes = (el.getAttribute("class") || "").trim().replace(/\\s+/g, ".");
      out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (classes ? "." + classes : "")
               + " right=" + Math.round(box.right));
    }
  }
  const main = document.querySelector("main");
  return {page: document.documentElement.scrollWidth, viewport: width, main: main.scrollWidth - main.clientWidth,
          culprits: out.slice(0, 8)};
}"""

# WCAG contrast of an element's text (or an SVG shape's fill or stroke) against the background it sits on.
CONTRAST = """(selector) => {
  const parse = (text) => {
    const n = text.match(/[\\d.]+/g).map(Number);
    return {r: n[0], g: n[1], b: n[2], a: n.length > 3 ? n[3] : 1};
  };
  const luminance = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const backdrop = (el) => {
    for (let at = el; at; at = at.parentElement) {
      const bg = parse(getComputedStyle(at).backgroundColor);
      if (bg.a > 0.5) return bg;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  return Array.from(document.querySelectorAll(selector)).map((el) => {
    const style = getComputedStyle(el);
    const svg = el instanceof SVGElement && el.tagName !== "text";
    const stroked = ["line", "polyline"].includes(el.tagName) || style.fill === "none";
    const paint = svg ? (stroked ? style.stroke : style.fill) : style.color;
    const fg = luminance(parse(paint));
    const bg = luminance(backdrop(svg ? el.ownerSVGElement.parentElement : el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    const name = el.getAttribute("class") || el.tagName;
    return [name + " " + (el.textContent || "").trim().slice(0, 20), Math.round(ratio * 100) / 100];
  });
}"""

# Every badge and level the panel draws, put into the page to be measured.
PROBE = "".join(
    [
        *(f'<span class="badge state-{state}">{state}</span>' for state in {*RunState, *ActivityState, "idle"}),
        *(f'<span class="badge q-{state}">{state}</span>' for state in ItemState),
        *(f'<span class="badge {kind}">{kind}</span>' for kind in ("", "ok", "bad", "warn", "info", "warn pausing")),
        '<table class="grid logs"><tbody>',
        *(f'<tr class="level-{level.lower()}"><td><span class="level">{level}</span></td></tr>' for level in LEVELS),
        "</tbody></table>",
        '<div class="flash notice">saved</div><div class="flash error">refused</div>',
        '<p class="muted">muted</p><p class="hint">hint</p><p class="field-error">wrong</p>',
        '<p><a href="#x">link</a></p>',
    ]
)
OUTCOMES = ("succeeded", "failed", "killed", "lost", "stopped", "active")  # the dashboard chart's bars
CHART = (
    '<g class="robot-row"><rect x="0" y="0" width="10" height="10"/><text>probe</text>'
    + "".join(f'<rect class="run run-{state}" x="0" y="0" width="4" height="4"/>' for state in RunState)
    + '<rect class="tick" x="0" y="0" width="2" height="4"/></g>'
)


OpenPage = Callable[..., Page]


@dataclass
class Panel:
    serve: ServeProcess
    password: str


@pytest.fixture(scope="module")
def panel(start_module_serve: StartServe, tmp_path_factory: pytest.TempPathFactory) -> Panel:
    """A server with a robot that ran, logs with a long unbroken line, a queue with items and a schedule."""
    folder = tmp_path_factory.mktemp("layout")
    (folder / "robofleet.toml").write_text(SETTINGS)
    serve = start_module_serve(folder)
    with serve.api() as api:
        assert api.post(f"/api/v1/robots/{ROBOT}/start").status_code == 201
        records = [
            {"message": f"step {n}: " + "invoice-batch-" * 30, "source": f"robot:{ROBOT}", "level": level}
            for n, level in enumerate(LEVELS)
        ]
        assert api.post("/api/v1/logs", json={"records": records}).status_code == 201
        items = [{"payload": {"invoice": n, "customer": "x" * 80}, "reference": f"INV-{n:06d}"} for n in range(5)]
        assert api.post("/api/v1/queues/invoices/items", json={"items": items}).status_code == 201

        def ran() -> bool:
            runs = api.get("/api/v1/runs").json()["items"]
            return [run["state"] for run in runs if run["robot"] == ROBOT] == ["succeeded"]

        wait_until(ran)
    made = serve.cli("user", "create", "bob", "--role", "invoice-runner", "--password-stdin", stdin="bob-password\n")
    assert made.returncode == 0, made.stderr
    return Panel(serve, serve.admin_password())


@pytest.fixture
def page_at(module_browser: Browser, panel: Panel) -> Iterator[OpenPage]:
    """`page_at(viewport, color_scheme="light", user="admin")`: a logged-in page of a new browser context."""
    contexts = []

    def open_page(viewport: ViewportSize, color_scheme: str = "light", user: str = "admin") -> Page:
        context = module_browser.new_context(viewport=viewport, color_scheme=color_scheme)  # type: ignore[arg-type]
        contexts.append(context)
        page = context.new_page()
        password = panel.password if user == "admin" else f"{user}-password"
        log_in(page, panel.serve.url, user, password)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366px", "390px"])
def test_no_page_scrolls_sideways(page_at: OpenPage, panel: Panel, viewport: ViewportSize) -> None:
    page = page_at(viewport)
    for path in PAGES:
        page.goto(f"{panel.serve.url}{path}")
        page.wait_for_load_state("load")
        seen = page.evaluate(OVERFLOW)
        assert seen["page"] <= seen["viewport"] and seen["main"] <= 0, (path, seen)
        # The forms fit too: those folded in a <details> (New robot, New schedule, …), opened.
        if page.locator("details:not([open])").count():
            page.evaluate("document.querySelectorAll('details').forEach((folded) => { folded.open = true; })")
            seen = page.evaluate(OVERFLOW)
            assert seen["page"] <= seen["viewport"] and seen["main"] <= 0, (path, "opened", seen)
    if viewport is PHONE:  # the tables hold their width in a box of their own that scrolls
        page.goto(f"{panel.serve.url}/panel/logs")
        table = page.locator("#log-table")
        assert table.evaluate("t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === 'auto'")


def test_the_menu_button_opens_the_navigation_by_keyboard(page_at: OpenPage, panel: Panel) -> None:
    page = page_at(PHONE)
    button = page.locator("#menu-toggle")
    assert button.is_visible() and button.get_attribute("aria-expanded") == "false"
    assert not page.locator(".sidebar a[data-shortcut='l']").is_visible()
    button.focus()
    page.keyboard.press("Enter")
    assert button.get_attribute("aria-expanded") == "true"
    logs = page.locator(".sidebar a[data-shortcut='l']")
    assert logs.is_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement === document.querySelector('.sidebar li a')")  # the first link
    page.keyboard.press("Escape")
    assert button.get_attribute("aria-expanded") == "false" and not logs.is_visible()
    assert page.evaluate("document.activeElement.id") == "menu-toggle"
    page.keyboard.press("Space")
    assert button.get_attribute("aria-expanded") == "true"
    logs.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/panel/logs")
    # At a desktop's width the sidebar stands open and the button is not there.
    wide = page_at(DESKTOP)
    assert not wide.locator("#menu-toggle").is_visible() and wide.locator(".sidebar a[data-shortcut='l']").is_visible()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366px", "390px"])
def test_the_skip_link_leads_to_the_main_content(page_at: OpenPage, panel: Panel, viewport: ViewportSize) -> None:
    page = page_at(viewport)
    page.goto(f"{panel.serve.url}/panel/robots")
    skip = page.locator("a.skip-link")
    hidden = skip.bounding_box()
    assert hidden is not None and hidden["y"] + hidden["height"] <= 0  # out of sight until focused
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    box = skip.bounding_box()
    assert box and box["y"] >= 0 and box["x"] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("!!document.activeElement.closest('main')")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1366px", "390px"])
def test_every_focused_control_shows_its_focus(page_at: OpenPage, panel: Panel, viewport: ViewportSize) -> None:
    page = page_at(viewport)
    for path in ("/panel/fleet", f"/panel/robots/{ROBOT}", "/panel/queues/invoices", "/panel/logs"):
        page.goto(f"{panel.serve.url}{path}")
        if viewport is PHONE:
            page.click("#menu-toggle")  # so that the Tab order goes through the navigation's links too
        visited = 0
        for _ in range(45):
            page.keyboard.press("Tab")
            name, style, width, again = page.evaluate(
                """() => { const el = document.activeElement; const s = getComputedStyle(el);
                   const again = el === document.body || el.dataset.tabbed === "1"; el.dataset.tabbed = "1";
                   return [el.tagName + (el.id ? '#' + el.id : '') + ' ' + (el.textContent || '').trim().slice(0, 20),
                           s.outlineStyle, parseFloat(s.outlineWidth), again]; }"""
            )
            if again:  # round the page once
                break
            visited += 1
            assert style != "none" and width >= 2, (path, name, style, width)
        assert visited > 8, (path, visited)


def test_live_regions_are_polite(page_at: OpenPage, panel: Panel) -> None:
    page = page_at(DESKTOP)
    live = {
        "/panel/dashboard": ["#dashboard-figures"],
        "/panel/fleet": ["#fleet-robots tbody"],
        "/panel/runs": ["#run-rows"],
        f"/panel/robots/{ROBOT}": ["#runs tbody", "#output"],
        "/panel/logs": ["#log-table tbody"],
        "/panel/console": ["#history tbody"],
        "/panel/queues": ["#queue-rows"],
        "/panel/queues/invoices": ["#item-rows", "#queue-figures"],
        "/panel/schedules": ["#schedule-rows"],
    }
    for path, regions in live.items():
        page.goto(f"{panel.serve.url}{path}")
        for region in regions:
            live = page.locator(region)
            assert live.get_attribute("aria-live") == "polite" or live.get_attribute("role") == "log", (path, region)
        # Whatever a stream or a refresh replaces in place (data-live, sse-swap) is in a polite live region.
        unannounced = page.evaluate(
            """() => Array.from(document.querySelectorAll('[sse-swap], [data-live]'))
                 .filter((el) => !el.closest('[aria-live=polite], [role=log], [role=status]'))
                 .map((el) => el.id || el.tagName)"""
        )
        assert not unannounced, (path, unannounced)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_each_scheme_colours_the_panel_with_enough_contrast(page_at: OpenPage, panel: Panel, scheme: str) -> None:
    page = page_at(DESKTOP, scheme)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(part) for part in background[background.index("(") + 1 : -1].split(",")[:3]]
    assert (max(channels) < 60) if scheme == "dark" else (min(channels) > 200), background
    page.goto(f"{panel.serve.url}/panel/queues")
    page.evaluate(
        "html => { const probe = document.createElement('div'); probe.id = 'probe'; probe.innerHTML = html;"
        " document.querySelector('main').append(probe); }",
        PROBE,
    )
    texts = page.evaluate(CONTRAST, "#probe .badge, #probe .level, #probe .flash, #probe p, #probe a")
    texts += page.evaluate(CONTRAST, ".sidebar li a, .sidebar .version, .sidebar button, table.grid th, h1, label")
    assert len(texts) > 40
    weak = [(name, ratio) for name, ratio in texts if ratio < 4.5]
    assert not weak, f"text below 4.5:1 in the {scheme} scheme: {weak}"
    # Chart marks (3:1 against the panel): the week timeline's runs and ticks, and a queue's sparkline.
    page.goto(f"{panel.serve.url}/panel/schedules/timeline")
    page.evaluate("html => document.getElementById('timeline').insertAdjacentHTML('beforeend', html)", CHART)
    marks = page.evaluate(CONTRAST, "#timeline rect.run, #timeline rect.tick, #timeline #now-line")
    page.goto(f"{panel.serve.url}/panel/queues")
    marks += page.evaluate(CONTRAST, "svg.sparkline .line")
    page.goto(f"{panel.serve.url}/panel/dashboard")  # its 24-hour chart: a bar of each outcome, and its figures
    bars = "".join(f'<rect class="seg outcome-{outcome}" width="4" height="4"/>' for outcome in OUTCOMES)
    page.evaluate("html => document.getElementById('hours-chart').insertAdjacentHTML('beforeend', html)", bars)
    marks += page.evaluate(CONTRAST, "#hours-chart rect.seg")
    assert len(marks) >= len(RunState) + 2 + len(OUTCOMES)
    texts = page.evaluate(CONTRAST, ".dash-count strong, .dash-count span, .rate, #dashboard-figures h2")
    weak = [(name, ratio) for name, ratio in texts if ratio < 4.5]
    assert texts and not weak, f"dashboard text below 4.5:1 in the {scheme} scheme: {weak}"
    weak = [(name, ratio) for name, ratio in marks if ratio < 3]
    assert not weak, f"chart marks below 3:1 in the {scheme} scheme: {weak}"


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
def test_a_narrow_users_sidebar_and_error_pages(
    store_url: str, tmp_path: Path, start_serve: StartServe, module_browser: Browser
) -> None:
    (tmp_path / "robofleet.toml").write_text(SETTINGS)
    env = {} if store_url.startswith("sqlite") else {"ROBOFLEET_STORE__URL": store_url}
    serve = start_serve(tmp_path, env=env)
    made = serve.cli("user", "create", "bob", "--role", "invoice-runner", "--password-stdin", stdin="bob-password\n")
    assert made.returncode == 0, made.stderr
    page = module_browser.new_context(viewport=PHONE).new_page()  # one Playwright per module: its browser
    log_in(page, serve.url, "bob", "bob-password")
    his = [entry.title for entry in NAVIGATION if entry.permission in ("robots:read", "logs:read")]
    titles = "els => els.map(el => el.firstChild.textContent.trim())"
    page.click("#menu-toggle")
    assert page.locator(".sidebar li a").evaluate_all(titles) == his
    assert not {"Console", "Access", "Settings", "Queues", "Schedules"} & set(his)
    for refused in ("/panel/console", "/panel/access/users", "/panel/settings"):
        answer = page.goto(f"{serve.url}{refused}")
        assert answer is not None and answer.status == 403
        assert page.locator("h1").inner_text().startswith("403")
        page.click("#menu-toggle")
        assert page.locator(".sidebar li a").evaluate_all(titles) == his
    page.click(".sidebar a[data-shortcut='r']")
    page.wait_for_url("**/panel/robots")
    assert page.locator(f"#robots a:has-text('{ROBOT}')").count() == 1
    page.context.close()
