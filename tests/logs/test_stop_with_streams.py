"""A stop (SIGTERM) ends the open live streams at once instead of waiting out the grace period for them."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.conftest import StartServe

pytestmark = pytest.mark.slow


def test_sigterm_ends_live_streams_and_stops_promptly(start_serve: StartServe) -> None:
    serve = start_serve()
    headers = {"Authorization": f"Bearer {serve.token()}"}
    ended: list[str] = []

    def watch(path: str) -> None:
        with (
            httpx.Client(base_url=serve.url, headers=headers, timeout=30) as client,
            client.stream("GET", path) as stream,
        ):
            assert stream.status_code == 200
            for _ in stream.iter_lines():
                pass
        ended.append(path)  # the server ended the response properly: no error on the way

    watchers = [
        threading.Thread(target=watch, args=(path,), daemon=True)
        for path in ("/api/v1/logs/stream", "/api/v1/logs/stream?source=robot:*", "/api/v1/runs-stream")
    ]
    for watcher in watchers:
        watcher.start()
    time.sleep(1)
    began = time.monotonic()
    assert serve.stop() in (0, -15)  # uvicorn re-raises the signal it handled
    took = time.monotonic() - began
    for watcher in watchers:
        watcher.join(5)
    assert sorted(ended) == sorted(["/api/v1/logs/stream", "/api/v1/logs/stream?source=robot:*", "/api/v1/runs-stream"])
    assert took < 3, f"stopping took {took:.1f} s with streams open"
