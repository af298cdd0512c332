"""PostgreSQL going away under a running `robofleet serve`: it stays up, says so, and recovers by itself."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import skip_or_fail
from tests.pg import ThrowawayCluster, pg_bin
from tests.serve import ServeProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    if pg_bin() is None:
        skip_or_fail("no PostgreSQL server binaries to start a throwaway cluster")
    try:
        made = ThrowawayCluster()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        skip_or_fail(f"cannot create a throwaway cluster: {exc}")
        raise
    made.start()
    made.wait_until_answers()
    try:
        yield made
    finally:
        made.destroy()


def poll(url: str, headers: dict[str, str] | None, want: int, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.get(url, headers=headers, timeout=10)
            if response.status_code == want:
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered {want}"
        time.sleep(0.2)


def test_serve_survives_the_database_going_away(tmp_path: Path, cluster: ThrowawayCluster) -> None:
    url = cluster.server().url("postgres")
    serve = ServeProcess(tmp_path, env={"ROBOFLEET_STORE__URL": url}).start(wait="/readyz")
    try:
        made = serve.token()
        headers = {"Authorization": f"Bearer {made}"}
        assert httpx.get(f"{serve.url}/api/v1/users", headers=headers).status_code == 200

        cluster.stop()
        assert httpx.get(f"{serve.url}/healthz").status_code == 200
        not_ready = poll(f"{serve.url}/readyz", None, 503)
        assert not_ready.json()["status"] == "unavailable" and not_ready.json()["reason"]
        began = time.monotonic()
        refused = httpx.get(f"{serve.url}/api/v1/users", headers=headers, timeout=30)
        assert refused.status_code == 503 and time.monotonic() - began < 10
        assert refused.json()["error"]["code"] == "store_unavailable"
        submitted = httpx.post(
            f"{serve.url}/api/v1/activities",
            headers=headers,
            timeout=30,
            json={"action": "system.echo", "args": {"message": "x"}},
        )
        assert submitted.status_code == 503

        cluster.start()
        poll(f"{serve.url}/readyz", None, 200)
        assert poll(f"{serve.url}/api/v1/users", headers, 200).json()["items"]
        echoed = httpx.post(
            f"{serve.url}/api/v1/activities",
            params={"wait": 10},
            headers=headers,
            json={"action": "system.echo", "args": {"message": "back"}},
            timeout=30,
        )
        assert echoed.json()["activities"][0]["state"] == "succeeded"
    finally:
        serve.stop()


def test_serve_started_before_its_database_becomes_ready_by_itself(tmp_path: Path, cluster: ThrowawayCluster) -> None:
    cluster.stop()
    serve = ServeProcess(tmp_path, env={"ROBOFLEET_STORE__URL": cluster.server().url("postgres")})
    serve.start(wait="/healthz")
    try:
        assert httpx.get(f"{serve.url}/readyz").status_code == 503
        assert httpx.get(f"{serve.url}/api/v1/me").status_code == 503
        cluster.start()
        poll(f"{serve.url}/readyz", None, 200)
        password = serve.admin_password()
        login = httpx.post(f"{serve.url}/api/v1/auth/login", json={"username": "admin", "password": password})
        assert login.status_code == 200
    finally:
        serve.stop()
