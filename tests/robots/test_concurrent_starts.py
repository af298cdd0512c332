"""`max_concurrent` holds under concurrent starts: many simultaneous POST /robots/X/start on a real `robofleet
serve` give exactly max_concurrent runs and a 409 for every other, on both stores."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import StartServe
from tests.robots.conftest import RobotsApi, serve_env

pytestmark = pytest.mark.slow
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
STARTS = 12


@pytest.mark.parametrize("max_concurrent", [1, 3])
def test_concurrent_starts_stop_at_max_concurrent(start_serve: StartServe, store_url: str, max_concurrent: int) -> None:
    serve = start_serve(env=serve_env(store_url))
    token = serve.token()
    robots = RobotsApi(serve.api(token))
    for attempt in range(3):
        name = f"race-{attempt}"
        robots.make(name, SLEEPER, max_concurrent=max_concurrent)

        def start(_: int, name: str = name) -> int:
            with httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as api:
                return api.post(f"/api/v1/robots/{name}/start").status_code

        with ThreadPoolExecutor(STARTS) as pool:
            answers = sorted(pool.map(start, range(STARTS)))
        assert answers == [201] * max_concurrent + [409] * (STARTS - max_concurrent), answers
        active = robots.api.get("/api/v1/runs", params={"robot": name, "state": "running"}).json()["items"]
        assert len(active) == max_concurrent
        assert robots.api.post(f"/api/v1/robots/{name}/kill").status_code == 200
