"""An open live stream ends once its caller may no longer read it: a revoked token, a disabled user, a logout, a
lost permission. Nothing sent after that reaches it (finding 8)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import StartServe

pytestmark = pytest.mark.slow
STREAMS = ("/api/v1/logs/stream", "/api/v1/activities/stream", "/api/v1/runs-stream", "/api/v1/schedules-stream")


class Watcher:
    """Reads one stream in a thread: every line it got, and when the server ended it."""

    def __init__(self, client: httpx.Client, path: str) -> None:
        self.lines: list[str] = []
        self.ended_at: float | None = None
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(client, path), daemon=True)
        self.thread.start()
        assert self.opened.wait(10), f"{path} did not open"

    def _read(self, client: httpx.Client, path: str) -> None:
        try:
            with client.stream("GET", path) as stream:
                assert stream.status_code == 200
                for line in stream.iter_lines():
                    self.opened.set()
                    self.lines.append(line)
        except httpx.HTTPError:
            return  # the test closed its client: not an end by the server
        self.ended_at = time.monotonic()


def watch_all(client: httpx.Client) -> list[Watcher]:
    return [Watcher(client, path) for path in STREAMS]


def assert_all_end_unseen(watchers: list[Watcher], admin: httpx.Client, took_at_most: float = 8) -> None:
    mark = f"SSE-MARK-{uuid.uuid4().hex}"
    began = time.monotonic()
    deadline = began + took_at_most
    while time.monotonic() < deadline and any(w.ended_at is None for w in watchers):
        posted = admin.post(
            "/api/v1/logs", json={"records": [{"source": "orchestrator", "message": f"{mark} secret data"}]}
        )
        assert posted.status_code == 201
        admin.post("/api/v1/activities", json={"action": "system.echo", "args": {"message": mark}})
        time.sleep(0.3)
    for watcher in watchers:
        watcher.thread.join(1)
        assert watcher.ended_at is not None, "a stream outlived its credentials"
        assert not any(mark in line for line in watcher.lines)


@pytest.mark.parametrize(
    "take_away",
    ["revoke", "disable", "role"],
)
def test_token_streams_end_when_the_token_or_user_is_taken_away(start_serve: StartServe, take_away: str) -> None:
    serve = start_serve()
    admin = serve.api()
    user = f"sse-{take_away}"
    assert admin.post("/api/v1/users", json={"username": user, "password": "pw-sse-12345", "roles": ["viewer"]})
    token = admin.post("/api/v1/tokens", json={"user": user}).json()
    with httpx.Client(base_url=serve.url, headers={"Authorization": f"Bearer {token['token']}"}, timeout=30) as own:
        watchers = watch_all(own)
        actions: dict[str, Callable[[], httpx.Response]] = {
            "revoke": lambda: admin.delete(f"/api/v1/tokens/{token['id']}"),
            "disable": lambda: admin.patch(f"/api/v1/users/{user}", json={"disabled": True}),
            "role": lambda: admin.patch(f"/api/v1/users/{user}", json={"roles": []}),
        }
        assert actions[take_away]().status_code == 200
        assert_all_end_unseen(watchers, admin)


def test_session_streams_end_at_logout(start_serve: StartServe) -> None:
    serve = start_serve()
    admin = serve.api()
    assert admin.post("/api/v1/users", json={"username": "sse-panel", "password": "pw-sse-12345", "roles": ["viewer"]})
    with httpx.Client(base_url=serve.url, timeout=30) as browser_like:
        logged = browser_like.post("/api/v1/auth/login", json={"username": "sse-panel", "password": "pw-sse-12345"})
        assert logged.status_code == 200, logged.text
        # The cookie is Secure; sent by hand over this plain-HTTP loopback, as a browser sends it to localhost.
        cookie = logged.cookies.get("robofleet_session") or logged.headers["set-cookie"].split(";")[0].split("=", 1)[1]
        browser_like.headers["Cookie"] = f"robofleet_session={cookie}"
        watchers = watch_all(browser_like)
        out = browser_like.post("/api/v1/auth/logout", headers={"X-CSRF-Token": logged.json()["csrf_token"]})
        assert out.status_code in (200, 204), out.text
        assert_all_end_unseen(watchers, admin)


def test_a_stream_of_a_caller_who_keeps_the_right_goes_on(start_serve: StartServe) -> None:
    serve = start_serve()
    admin = serve.api()
    with serve.api() as own:
        watcher = Watcher(own, "/api/v1/logs/stream")
        mark = f"KEEP-{uuid.uuid4().hex}"
        time.sleep(1.5)  # past one recheck
        assert (
            admin.post("/api/v1/logs", json={"records": [{"source": "orchestrator", "message": mark}]}).status_code
            == 201
        )
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not any(mark in line for line in watcher.lines):
            time.sleep(0.1)
        assert any(mark in line for line in watcher.lines) and watcher.ended_at is None
