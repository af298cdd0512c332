"""PostgreSQL going away under a real `robofleet serve`: it stays up, answers 503 in bounded time, recovers alone.

Each test runs its own throwaway cluster, stopped (fast, immediate) or frozen (SIGSTOP: a server that holds
its connections open and never answers, like one behind a network that drops packets) while serve runs.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any

import httpx
import psutil
import pytest

from robofleet.errors import StoreUnavailable
from robofleet.settings.model import StoreSettings
from robofleet.store import Store
from tests.conftest import ServeProcess, StartServe, ThrowawayCluster, wait_until
from tests.store_outage import serve_on, throwaway_cluster

pytestmark = pytest.mark.slow

BOUND = 10.0  # no request may take longer than this while the store is away


@pytest.fixture
def cluster() -> Iterator[ThrowawayCluster]:
    with throwaway_cluster() as running:
        yield running


def timed(method: str, url: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = httpx.request(method, url, timeout=30, **kwargs)
    return response, time.monotonic() - began


def poll(url: str, want: int, *, headers: dict[str, str] | None = None, timeout: float = 15) -> float:
    """Seconds until GET `url` answers `want`."""
    began = time.monotonic()
    last: list[object] = [None]

    def answered() -> bool:
        try:
            response = httpx.get(url, headers=headers, timeout=BOUND)
        except httpx.HTTPError as exc:
            last[0] = exc
            return False
        last[0] = f"{response.status_code} {response.text[:200]}"
        return response.status_code == want

    wait_until(answered, timeout, message=lambda: f"{url} to answer {want} (last: {last[0]})")
    return time.monotonic() - began


def assert_unavailable(response: httpx.Response, took: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "store_unavailable" and response.json()["error"]["message"]
    assert response.headers.get("retry-after")
    assert took < BOUND


def assert_not_ready(serve: ServeProcess) -> str:
    not_ready, took = timed("GET", f"{serve.url}/readyz")
    assert not_ready.status_code == 503 and took < BOUND
    assert not_ready.json()["status"] == "unavailable" and not_ready.json()["reason"]
    return str(not_ready.json()["reason"])


def warm_pool(serve: ServeProcess, headers: dict[str, str]) -> None:
    """Leave several idle connections in the pool: the ones an outage turns stale."""
    with ThreadPoolExecutor(12) as pool:
        codes = set(pool.map(lambda _: httpx.get(f"{serve.url}/api/v1/users", headers=headers).status_code, range(24)))
    assert codes == {200}


def echo(serve: ServeProcess, headers: dict[str, str], message: str) -> httpx.Response:
    return httpx.post(
        f"{serve.url}/api/v1/activities",
        params={"wait": 10},
        headers=headers,
        json={"action": "system.echo", "args": {"message": message}},
        timeout=30,
    )


def users(serve: ServeProcess, headers: dict[str, str]) -> list[str]:
    answer = httpx.get(f"{serve.url}/api/v1/users", headers=headers, params={"limit": 100}, timeout=BOUND)
    assert answer.status_code == 200, answer.text
    return [item["username"] for item in answer.json()["items"]]


def no_unexpected_errors(serve: ServeProcess) -> None:
    output = serve.output()
    assert "unexpected error" not in output and "Traceback" not in output, output[-4000:]


def test_serve_rides_out_stopped_database_and_recovers_without_restart(
    cluster: ThrowawayCluster, start_serve: StartServe
) -> None:
    serve = serve_on(start_serve, cluster).start(wait="/readyz")
    headers = {"Authorization": f"Bearer {serve.token()}"}
    pid = serve.process.pid if serve.process else None
    warm_pool(serve, headers)
    assert echo(serve, headers, "warm").json()["activities"][0]["state"] == "succeeded"
    created = httpx.post(
        f"{serve.url}/api/v1/users", headers=headers, json={"username": "before", "password": "before-password"}
    )
    assert created.status_code == 201

    for mode in ("fast", "immediate"):  # a clean shutdown, then a crash
        cluster.stop(mode)
        health, took = timed("GET", f"{serve.url}/healthz")
        assert health.status_code == 200 and took < 1
        assert "connect" in assert_not_ready(serve)
        assert_unavailable(*timed("GET", f"{serve.url}/api/v1/users", headers=headers))
        assert_unavailable(
            *timed("POST", f"{serve.url}/api/v1/users", headers=headers, json={"username": "x", "password": "x" * 12})
        )
        assert_unavailable(
            *timed("POST", f"{serve.url}/api/v1/auth/login", json={"username": "admin", "password": "x" * 12})
        )
        assert_unavailable(
            *timed(
                "POST",
                f"{serve.url}/api/v1/activities",
                headers=headers,
                json={"action": "system.echo", "args": {"message": "during the outage"}},
            )
        )
        with ThreadPoolExecutor(16) as pool:  # a burst: every answer a bounded 503, none a 500
            burst = list(pool.map(lambda _: timed("GET", f"{serve.url}/api/v1/users", headers=headers), range(32)))
        for response, took in burst:
            assert_unavailable(response, took)

        cluster.start()
        assert poll(f"{serve.url}/readyz", 200) < 5
        assert poll(f"{serve.url}/api/v1/users", 200, headers=headers) < 5
        assert "before" in users(serve, headers)
        again = httpx.post(
            f"{serve.url}/api/v1/users",
            headers=headers,
            json={"username": f"after-{mode}", "password": "after-password"},
        )
        assert again.status_code == 201, again.text
        assert echo(serve, headers, mode).json()["activities"][0]["result"] == {"message": mode}

    assert serve.process is not None and serve.process.poll() is None and serve.process.pid == pid
    assert {"before", "after-fast", "after-immediate"} <= set(users(serve, headers))
    no_unexpected_errors(serve)

    cluster.stop("immediate")  # a stop while the store is away is prompt too
    began = time.monotonic()
    assert serve.stop(timeout=BOUND) in (0, -signal.SIGTERM)
    assert time.monotonic() - began < BOUND


def test_serve_started_while_its_database_is_down_becomes_ready_by_itself(
    cluster: ThrowawayCluster, start_serve: StartServe
) -> None:
    cluster.stop()
    serve = serve_on(start_serve, cluster).start(wait="/healthz")
    assert "connect" in assert_not_ready(serve)
    assert_unavailable(*timed("GET", f"{serve.url}/api/v1/me"))
    assert_unavailable(*timed("GET", f"{serve.url}/api/v1/users", headers={"Authorization": "Bearer rf_x"}))
    assert not (serve.workdir / "robofleet-data" / "initial-admin-password").exists()
    assert "First start" not in serve.output()

    cluster.start()
    assert poll(f"{serve.url}/readyz", 200) < 2 * 2.0 + 3  # retried every 2 s (server.RETRY_SECONDS)
    password = serve.admin_password()
    assert serve.output().count(password) == 1
    login = httpx.post(f"{serve.url}/api/v1/auth/login", json={"username": "admin", "password": password})
    assert login.status_code == 200
    headers = {"Authorization": f"Bearer {serve.token()}"}
    assert sorted(users(serve, headers)) == ["admin", "robot-runs"]  # robot-runs: the owner of runs' tokens
    assert echo(serve, headers, "late").json()["activities"][0]["state"] == "succeeded"  # background services
    no_unexpected_errors(serve)


@contextmanager
def frozen(cluster: ThrowawayCluster) -> Iterator[None]:
    """Every process of the cluster stopped with SIGSTOP: connections stay open, nothing answers."""
    postmaster = psutil.Process(int((cluster.dir / "data" / "postmaster.pid").read_text().split()[0]))
    processes = [postmaster, *postmaster.children(recursive=True)]
    for process in processes:
        with suppress(psutil.NoSuchProcess):  # a backend that was just ending
            process.suspend()
    try:
        yield
    finally:
        for process in processes:
            with suppress(psutil.NoSuchProcess):
                process.resume()


def test_a_database_that_stops_answering_gets_bounded_503s_not_hangs(
    cluster: ThrowawayCluster, start_serve: StartServe
) -> None:
    timeout = 2  # store.connect_timeout: also how long a pooled connection's ping may take
    serve = serve_on(start_serve, cluster, ROBOFLEET_STORE__CONNECT_TIMEOUT=str(timeout)).start(wait="/readyz")
    bound = 2 * timeout + 1  # a stale pooled connection's ping, then a new connection, both given up
    headers = {"Authorization": f"Bearer {serve.token()}"}
    warm_pool(serve, headers)
    assert echo(serve, headers, "warm").status_code == 201
    time.sleep(1.1)  # let the activity writer's held connection go quiet, so it is checked before reuse

    with frozen(cluster), ThreadPoolExecutor(12) as pool:  # all at once: the bounds hold under a burst
        calls = [pool.submit(timed, "GET", f"{serve.url}/api/v1/users", headers=headers) for _ in range(8)]
        submitted = pool.submit(
            timed,
            "POST",
            f"{serve.url}/api/v1/activities",
            headers=headers,
            json={"action": "system.echo", "args": {"message": "x"}},
        )
        readiness = pool.submit(timed, "GET", f"{serve.url}/readyz")
        time.sleep(0.2)
        health, took = timed("GET", f"{serve.url}/healthz")
        assert health.status_code == 200 and took < 1  # answered while the others wait on the store
        for call in [*calls, submitted]:
            response, took = call.result()
            assert_unavailable(response, took)
            assert took < bound
        response, took = readiness.result()
        assert response.status_code == 503 and response.json()["reason"] and took < bound

    assert poll(f"{serve.url}/readyz", 200) < 5
    assert poll(f"{serve.url}/api/v1/users", 200, headers=headers) < 5
    assert echo(serve, headers, "thawed").json()["activities"][0]["result"] == {"message": "thawed"}
    no_unexpected_errors(serve)

    with frozen(cluster), ThreadPoolExecutor(1) as pool:  # SIGTERM while a request waits on a hung store
        waiting = pool.submit(timed, "GET", f"{serve.url}/api/v1/users", headers=headers)
        time.sleep(0.3)
        began = time.monotonic()
        assert serve.stop(timeout=BOUND) in (0, -signal.SIGTERM)
        assert time.monotonic() - began < BOUND
        assert_unavailable(*waiting.result())  # answered before the stop, not cut off


def test_the_store_gives_up_on_a_frozen_database_within_its_connect_timeout(cluster: ThrowawayCluster) -> None:
    store = Store(StoreSettings(url=cluster.server().url("postgres"), connect_timeout=1))
    try:
        with ThreadPoolExecutor(4) as pool:  # idle pooled connections, stale once the server freezes
            list(pool.map(lambda _: store.ping(), range(8)))
        held = store.engine.connect()
        held.exec_driver_sql("SELECT 1")
        held.rollback()
        assert store.alive(held)
        with frozen(cluster):
            began = time.monotonic()
            assert not store.alive(held)
            assert time.monotonic() - began < 1.5
            # A stale connection's ping, given up after 1 s, then a new connection, after 2 s (psycopg's least
            # connect timeout). The failed ping dropped the whole pool: the next caller waits on a connection
            # attempt only, not on another stale connection's ping.
            for bound in (3.5, 2.5):
                began = time.monotonic()
                with pytest.raises(StoreUnavailable):
                    store.ping()
                assert time.monotonic() - began < bound
        held.invalidate()
        held.close()
        store.ping()  # and back, with no restart
    finally:
        store.dispose()
