"""The README's screenshots, taken from a real `robofleet serve`: the dashboard and a failed run's page.

Starts `serve` in a scratch folder with the demo robots and two more (one that sends invoices and succeeds, one
that checks a portal and fails with a traceback), makes some runs succeed and fail and leaves the counter running,
then photographs the panel with Playwright and Debian's Chromium into docs/screenshots/. Stops everything it started.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "robots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
T = TypeVar("T")

PORTAL_CHECK = (
    "import logging, time; logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s'); "
    "logging.info('logging in to portal.example'); time.sleep(1); logging.warning('slow answer: 900 ms'); "
    "raise ConnectionError('portal.example answered 503')"
)
SETTINGS = f"""
[[robots]]
name = "demo-counter"
argv = ["{sys.executable}", "counter.py"]
cwd = "{EXAMPLES}"
description = "Counts once a second"
tags = ["demo"]
safe_stop_timeout = 5

[[robots]]
name = "invoices"
argv = ["{sys.executable}", "-c", "import time; time.sleep(2); print('sent 12 invoices')"]
description = "Sends the day's invoices"
tags = ["finance"]

[[robots]]
name = "portal-check"
argv = ["{sys.executable}", "-c", "{PORTAL_CHECK}"]
description = "Checks the supplier portal"
tags = ["finance"]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait(check: Callable[[], T | None], seconds: float, what: str) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise SystemExit(f"gave up waiting for {what}")


def robofleet(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "robofleet", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def ended(api: httpx.Client, robot: str) -> dict[str, Any]:
    run_id = api.post(f"/api/v1/robots/{robot}/start").raise_for_status().json()["id"]

    def done() -> dict[str, Any] | None:
        run: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
        return run if run["state"] not in ("queued", "starting", "running") else None

    return wait(done, 30, f"run {run_id} of {robot} to end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="robofleet-screens-") as scratch:
        folder = Path(scratch)
        (folder / "robofleet.toml").write_text(SETTINGS)
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("ROBOFLEET_")}
        env["ROBOFLEET_SERVER__PORT"] = str(port)
        url = f"http://127.0.0.1:{port}"
        with (folder / "serve.log").open("w") as log:
            serve = subprocess.Popen(
                [sys.executable, "-m", "robofleet", "serve"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait(lambda: httpx.get(f"{url}/readyz").status_code == 200, 60, "serve to be ready")
            token = robofleet("token", "create", "--user", "admin", cwd=folder, env=env).strip().splitlines()[-1]
            password = (folder / "robofleet-data" / "initial-admin-password").read_text().strip()
            api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
            failed = None
            for robot in ("invoices", "portal-check", "invoices", "invoices", "portal-check", "invoices"):
                run = ended(api, robot)
                failed = run if run["state"] == "failed" else failed
            assert failed is not None, "portal-check did not fail"
            api.post("/api/v1/robots/demo-counter/start").raise_for_status()
            time.sleep(3)  # a few lines of output, a few seconds of run time

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=LAUNCH_ARGS)
                try:
                    page = browser.new_page(viewport={"width": 1366, "height": 900})
                    page.goto(f"{url}/panel/login?next=/panel/dashboard")
                    page.fill("input[name=username]", "admin")
                    page.fill("input[name=password]", password)
                    page.click("form[action='/panel/login'] button[type=submit]")
                    page.wait_for_url("**/panel/dashboard")
                    page.wait_for_selector("#live-state:text('live')")
                    page.screenshot(path=str(args.out / "dashboard.png"), full_page=True)
                    page.goto(f"{url}/panel/runs/{failed['id']}")
                    page.wait_for_selector("main h1")
                    page.wait_for_timeout(1500)  # its output, fetched and followed live (no network idle: streams)
                    page.screenshot(path=str(args.out / "run.png"), full_page=True)
                finally:
                    browser.close()
            api.post("/api/v1/robots/demo-counter/kill")
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=20)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()
    print(f"screenshots in {args.out}: dashboard.png, run.png")


if __name__ == "__main__":
    main()
